#include "web/compression_codecs.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>
#include <stdexcept>

namespace atl::web::codec {

namespace {

// gzip's window is fixed by the format's common use: 32 KiB, memLevel 8
// (~256 KiB of state), what every decoder handles.
constexpr int gzip_window_bits = 15;
constexpr int gzip_mem_level = 8;
// A one-shot brotli window: at most 4 MiB (brotli's default), and no larger
// than the body needs, so a small body gets a small ring buffer.
constexpr int brotli_max_window = 22;
// Room added to `out` per round of a streamed encoder.
constexpr std::size_t out_step = 16 * 1024;

const std::uint8_t* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}
std::uint8_t* bytes(std::string& s, std::size_t at) noexcept {
  return reinterpret_cast<std::uint8_t*>(s.data() + at);
}

int brotli_window_for(std::size_t size) noexcept {
  int bits = size <= 1 ? 0 : int(std::bit_width(size - 1));
  return std::clamp(bits, BROTLI_MIN_WINDOW_BITS, brotli_max_window);
}

class GzipEncoder final : public StreamEncoder {
 public:
  explicit GzipEncoder(int level) {
    if (deflateInit2(&z_, level, Z_DEFLATED, 16 + gzip_window_bits, gzip_mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::bad_alloc();
  }
  ~GzipEncoder() override { deflateEnd(&z_); }
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  void write(std::string_view in, bool finish, std::string& out) override {
    z_.next_in = const_cast<Bytef*>(bytes(in));
    z_.avail_in = uInt(in.size());
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      std::size_t old = out.size();
      std::size_t room = std::max(out_step, std::size_t(deflateBound(&z_, uLong(z_.avail_in))));
      out.resize(old + room);
      z_.next_out = bytes(out, old);
      z_.avail_out = uInt(room);
      int rc = deflate(&z_, flush);
      out.resize(old + room - z_.avail_out);
      if (rc == Z_STREAM_END) return;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("gzip: deflate failed");
      // A flush is complete when deflate leaves output space unused.
      if (!finish && z_.avail_in == 0 && z_.avail_out != 0) return;
    }
  }

 private:
  z_stream z_{};
};

class BrotliEncoder final : public StreamEncoder {
 public:
  BrotliEncoder(int quality, int window_bits)
      : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (!s_) throw std::bad_alloc();
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, std::uint32_t(quality));
    BrotliEncoderSetParameter(s_, BROTLI_PARAM_LGWIN, std::uint32_t(window_bits));
  }
  ~BrotliEncoder() override { BrotliEncoderDestroyInstance(s_); }
  BrotliEncoder(const BrotliEncoder&) = delete;
  BrotliEncoder& operator=(const BrotliEncoder&) = delete;

  void write(std::string_view in, bool finish, std::string& out) override {
    const std::uint8_t* next_in = bytes(in);
    std::size_t avail_in = in.size();
    BrotliEncoderOperation op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    for (;;) {
      std::size_t avail_out = 0;
      if (!BrotliEncoderCompressStream(s_, op, &avail_in, &next_in, &avail_out, nullptr, nullptr))
        throw std::runtime_error("brotli: compression failed");
      std::size_t n = 0;
      const std::uint8_t* produced = BrotliEncoderTakeOutput(s_, &n);
      out.append(reinterpret_cast<const char*>(produced), n);
      if (avail_in == 0 && !BrotliEncoderHasMoreOutput(s_) &&
          (!finish || BrotliEncoderIsFinished(s_)))
        return;
    }
  }

 private:
  BrotliEncoderState* s_;
};

class ZstdEncoder final : public StreamEncoder {
 public:
  ZstdEncoder(int level, int window_bits) : c_(ZSTD_createCCtx()) {
    if (!c_) throw std::bad_alloc();
    ZSTD_CCtx_setParameter(c_, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c_, ZSTD_c_windowLog, window_bits);
  }
  ~ZstdEncoder() override { ZSTD_freeCCtx(c_); }
  ZstdEncoder(const ZstdEncoder&) = delete;
  ZstdEncoder& operator=(const ZstdEncoder&) = delete;

  void write(std::string_view in, bool finish, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    ZSTD_EndDirective mode = finish ? ZSTD_e_end : ZSTD_e_flush;
    for (;;) {
      std::size_t old = out.size();
      std::size_t room =
          std::max(ZSTD_CStreamOutSize(), ZSTD_compressBound(input.size - input.pos));
      out.resize(old + room);
      ZSTD_outBuffer output{out.data() + old, room, 0};
      std::size_t left = ZSTD_compressStream2(c_, &output, &input, mode);
      out.resize(old + output.pos);
      if (ZSTD_isError(left))
        throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(left));
      if (left == 0) return;  // flushed (or, with e_end, the frame is complete)
    }
  }

 private:
  ZSTD_CCtx* c_;
};

}  // namespace

void compress(ContentCoding coding, std::string_view in, const CompressionOptions& options,
              std::string& out) {
  std::size_t old = out.size();
  switch (coding) {
    case ContentCoding::gzip: {
      GzipEncoder(options.gzip_level).write(in, true, out);
      return;
    }
    case ContentCoding::br: {
      std::size_t room = BrotliEncoderMaxCompressedSize(in.size());
      if (room == 0) throw std::length_error("brotli: body too large to compress in one piece");
      out.resize(old + room);
      if (!BrotliEncoderCompress(options.brotli_quality, brotli_window_for(in.size()),
                                 BROTLI_MODE_GENERIC, in.size(), bytes(in), &room, bytes(out, old)))
        throw std::runtime_error("brotli: compression failed");
      out.resize(old + room);
      return;
    }
    case ContentCoding::zstd: {
      // The level's parameters adapt to the known size: a small body gets a
      // small window, and the frame records the content size.
      std::size_t room = ZSTD_compressBound(in.size());
      out.resize(old + room);
      std::size_t n =
          ZSTD_compress(out.data() + old, room, in.data(), in.size(), options.zstd_level);
      if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
      out.resize(old + n);
      return;
    }
  }
}

std::unique_ptr<StreamEncoder> make_stream_encoder(ContentCoding coding,
                                                   const CompressionOptions& options) {
  switch (coding) {
    case ContentCoding::gzip:
      return std::make_unique<GzipEncoder>(options.gzip_level);
    case ContentCoding::br:
      return std::make_unique<BrotliEncoder>(options.brotli_quality, options.stream_window_bits);
    case ContentCoding::zstd:
      return std::make_unique<ZstdEncoder>(options.zstd_level, options.stream_window_bits);
  }
  throw std::invalid_argument("unknown content coding");
}

}  // namespace atl::web::codec
