#pragma once
// A per-thread recycling allocator for coroutine frames.
//
// Every request creates a few short-lived coroutine frames (the handler, a
// read, a write). malloc is fast, but a thread-local free list per size class
// is faster still and never takes a lock; frames above the largest class fall
// through to operator new.
#include <cstddef>

namespace atl::runtime {

/// Allocates `size` bytes for a coroutine frame from this thread's free lists.
void* allocate_frame(std::size_t size);
/// Returns a frame allocated by allocate_frame; may be called on any thread.
void deallocate_frame(void* frame, std::size_t size) noexcept;

}  // namespace atl::runtime
