// A growable byte buffer with a consumed prefix: append at the back, consume
// from the front, compact lazily.  Not thread-safe.  Frees its storage when
// emptied if it grew large, so idle connections cost no buffer memory.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace dp {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { std::free(data_); }

  std::string_view view() const { return {data_ + head_, tail_ - head_}; }
  const char* data() const { return data_ + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return tail_ == head_; }
  size_t capacity() const { return cap_; }

  void append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(prepare(s.size()), s.data(), s.size());
    tail_ += s.size();
  }
  // Room for at least n bytes at the back; then commit(k) for k <= n written.
  char* prepare(size_t n) {
    if (cap_ - tail_ < n) grow(n);
    return data_ + tail_;
  }
  void commit(size_t n) { tail_ += n; }
  size_t writable() const { return cap_ - tail_; }

  void consume(size_t n) {
    head_ += n;
    if (head_ == tail_) clear();
  }
  void clear() {
    head_ = tail_ = 0;
    if (cap_ > kKeep) release();
  }
  void release() {
    std::free(data_);
    data_ = nullptr;
    cap_ = head_ = tail_ = 0;
  }
  void swap(ByteBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(tail_, o.tail_);
  }

 private:
  static constexpr size_t kKeep = 16 * 1024;

  void grow(size_t n) {
    size_t live = tail_ - head_;
    if (head_ > 0 && cap_ - live >= n && head_ >= live) {  // compacting is enough
      std::memmove(data_, data_ + head_, live);
      head_ = 0;
      tail_ = live;
      return;
    }
    size_t want = live + n;
    size_t cap = cap_ ? cap_ : 4096;
    while (cap < want) cap *= 2;
    char* p = static_cast<char*>(std::malloc(cap));
    if (!p) throw std::bad_alloc();
    if (live) std::memcpy(p, data_ + head_, live);
    std::free(data_);
    data_ = p;
    cap_ = cap;
    head_ = 0;
    tail_ = live;
  }

  char* data_ = nullptr;
  size_t cap_ = 0, head_ = 0, tail_ = 0;
};

}  // namespace dp
