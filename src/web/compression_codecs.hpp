#pragma once
// The three encoders behind the compression middleware, one-shot and streamed.
#include <atoll/web/compression.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace atl::web::codec {

/// `in` as one complete stream of `coding`, appended to `out`.
void compress(ContentCoding coding, std::string_view in, const CompressionOptions& options,
              std::string& out);

/// A streamed encoder: each write() yields what the client can decode now.
class StreamEncoder {
 public:
  virtual ~StreamEncoder() = default;
  /// Compresses `in` and appends to `out` everything up to a flush point;
  /// with `finish`, ends the stream (a final write may have empty `in`).
  virtual void write(std::string_view in, bool finish, std::string& out) = 0;
};

/// Throws std::bad_alloc if the codec cannot get its state.
std::unique_ptr<StreamEncoder> make_stream_encoder(ContentCoding coding,
                                                   const CompressionOptions& options);

}  // namespace atl::web::codec
