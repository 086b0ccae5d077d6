#include "host/archive.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace atl::host {

namespace {

std::string gunzip(std::string_view in, std::size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK)
    throw std::runtime_error("archive: cannot initialise zlib");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  std::string out;
  char buf[65536];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      throw std::invalid_argument("the archive is not valid gzip data");
    }
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      throw std::length_error("the archive unpacks to more than " + std::to_string(max_bytes) +
                              " bytes");
    }
  } while (rc != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
  inflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::invalid_argument("the archive's gzip data is truncated");
  return out;
}

std::uint64_t octal(const char* p, std::size_t n) {
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + std::uint64_t(p[i] - '0');
  return v;
}

std::string field(const char* p, std::size_t n) { return std::string(p, strnlen(p, n)); }

// "27 path=some/long/name\n" records.
std::string pax_path(std::string_view data) {
  std::string path;
  while (!data.empty()) {
    std::size_t space = data.find(' ');
    if (space == std::string_view::npos) break;
    std::size_t len = std::strtoul(std::string(data.substr(0, space)).c_str(), nullptr, 10);
    if (len == 0 || len > data.size()) break;
    std::string_view rec = data.substr(space + 1, len - space - 2);
    if (rec.starts_with("path=")) path = std::string(rec.substr(5));
    data.remove_prefix(len);
  }
  return path;
}

void octal_field(char* p, std::size_t n, std::uint64_t v) {
  std::snprintf(p, n, "%0*llo", int(n - 1), static_cast<unsigned long long>(v));
}

}  // namespace

std::vector<PublishFile> read_tar_gz(std::string_view archive, std::size_t max_bytes) {
  std::string tar = gunzip(archive, max_bytes);
  std::vector<PublishFile> files;
  std::size_t pos = 0;
  std::string long_name;
  while (pos + 512 <= tar.size()) {
    const char* h = tar.data() + pos;
    if (std::all_of(h, h + 512, [](char c) { return c == 0; })) break;  // end of archive
    std::uint64_t size = octal(h + 124, 12);
    char type = h[156];
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    std::size_t data = pos + 512;
    if (data + size > tar.size())
      throw std::invalid_argument("the archive is truncated inside '" + name + "'");
    std::string_view body(tar.data() + data, std::size_t(size));
    pos = data + ((size + 511) / 512) * 512;
    if (type == 'L') {  // GNU long name for the next entry
      long_name = std::string(body.substr(0, strnlen(body.data(), body.size())));
      continue;
    }
    if (type == 'x') {  // pax header for the next entry
      long_name = pax_path(body);
      continue;
    }
    if (type == 'g') continue;  // pax global header
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    std::string shown = name.substr(0, 200);
    if (type == '2' || type == '1')
      throw std::invalid_argument("archive entry '" + shown + "' is a " +
                                  (type == '2' ? "symlink" : "hard link") +
                                  ": links are refused (they could point outside the site)");
    if (type == '5') continue;  // directories are implied by file paths
    if (type != '0' && type != '\0' && type != '7')
      throw std::invalid_argument("archive entry '" + shown + "' is not a regular file (type '" +
                                  std::string(1, type) + "')");
    while (name.starts_with("./")) name.erase(0, 2);
    if (name.starts_with("/"))
      throw std::invalid_argument("archive entry '" + shown + "' has an absolute path");
    try {
      validate_publish_path(name);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("archive entry: ") + e.what());
    }
    files.push_back({name, std::string(body)});
  }
  return files;
}

std::string write_tar_gz(const std::vector<PublishFile>& files) {
  std::string tar;
  for (const auto& f : files) {
    auto header = [&](const std::string& name, char type, std::size_t size) {
      char h[512] = {};
      std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 99));
      octal_field(h + 100, 8, 0644);
      octal_field(h + 108, 8, 0);
      octal_field(h + 116, 8, 0);
      octal_field(h + 124, 12, size);
      octal_field(h + 136, 12, 0);
      h[156] = type;
      std::memcpy(h + 257, "ustar", 6);
      std::memcpy(h + 263, "00", 2);
      std::memset(h + 148, ' ', 8);
      unsigned sum = 0;
      for (unsigned char c : h) sum += c;
      std::snprintf(h + 148, 8, "%06o", sum);
      h[155] = ' ';
      tar.append(h, 512);
    };
    if (f.path.size() > 99) {  // GNU long name
      header("././@LongLink", 'L', f.path.size() + 1);
      tar.append(f.path);
      tar.append(1, '\0');
      tar.append((512 - (f.path.size() + 1) % 512) % 512, '\0');
    }
    header(f.path, '0', f.bytes.size());
    tar.append(f.bytes);
    tar.append((512 - f.bytes.size() % 512) % 512, '\0');
  }
  tar.append(1024, '\0');
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, uLong(tar.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(tar.data());
  z.avail_in = uInt(tar.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace atl::host
