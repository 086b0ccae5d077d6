#pragma once
// Reading an uploaded .tar.gz into files, refusing anything unsafe.
#include <atoll/host/publish.hpp>

#include <string_view>
#include <vector>

namespace atl::host {

/// Unpacks a gzip-compressed tar (ustar, pax and GNU long names). Throws
/// std::invalid_argument naming the entry for an absolute path, "..", a
/// symlink or hard link, a device, or a malformed archive; std::length_error
/// if the unpacked size passes `max_bytes` (a gzip bomb stops there).
std::vector<PublishFile> read_tar_gz(std::string_view archive, std::size_t max_bytes);

/// Packs files into a .tar.gz (used by `atoll publish --server`).
std::string write_tar_gz(const std::vector<PublishFile>& files);

}  // namespace atl::host
