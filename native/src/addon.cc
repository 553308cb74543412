// Sluice native addon: the I/O that decides throughput.
//
// Context-aware (NODE_API_MODULE, no global JS state), so worker threads load it too. Sync
// functions run on the calling thread (the partition owner); functions returning promises run on
// the libuv thread pool. Every failure is a JS Error carrying `code` (errno name, e.g. 'ENOSPC')
// and `syscall`.
//
// Exports:
//   pwrite(fd, buf, position) -> bytes          loops over short writes
//   pwritev(fd, bufs[], position) -> bytes      loops over short writes, at most kMaxIov buffers
//   pread(fd, buf, position, length) -> bytes   loops until length or end of file
//   fdatasync(fd), fdatasyncAsync(fd) -> Promise<void>
//   fallocate(fd, offset, length)               fallocate(2), else posix_fallocate, else ENOTSUP
//   ftruncate(fd, length)
//   sendfile(socketFd, fileFd, position, length, timeoutMs, cancel?) -> Promise<bytes>
//   splice(socketFd, fileFd, position, length, timeoutMs, cancel?) -> Promise<bytes>
//                                               same contract, file -> 1 MiB pipe -> socket
//   sendmapped(socketFd, fileFd, position, length, timeoutMs, cancel?) -> Promise<bytes>
//                                               same contract, mmap 8 MiB windows -> write
//   sendNow(socketFd, bufs[], more) -> bytes    one non-blocking sendmsg of the buffers (MSG_MORE
//                                               when `more`); 0 when the socket is full
//   sendfileNow(socketFd, fileFd, position, length) -> bytes
//                                               non-blocking sendfile on the calling thread until
//                                               the range is sent, the socket is full or the file
//                                               ends
//   crc32c(buf, init?) -> uint32                SSE4.2 (3 interleaved streams) or software
//   crc32cHardware() -> boolean
//   scheduleThreadAsBatch() -> boolean         the calling thread to SCHED_BATCH (Linux only)
//   bellOpen(callback) -> id                    a doorbell of the calling thread's event loop
//   bellRing(id) -> boolean                     from any thread: run that loop's callback soon
//   bellClose(id)                               on the opening thread
//   bellRef(id, on)                             on the opening thread: the bell keeps its loop
//                                               alive (on) or not (off, the initial state)
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace {

constexpr size_t kMaxIov = 1024;                 // IOV_MAX on Linux
constexpr size_t kMaxSyscallBytes = 0x7ffff000;  // Linux caps one read/write/sendfile at this
constexpr int kPollSliceMs = 20;                 // how often a waiting sendfile checks cancel
constexpr int kPipeBytes = 1 << 20;              // splice pipe size (default pipe-max-size)
constexpr int64_t kMapWindowBytes = 8 << 20;     // sendmapped's mapping, one per send in flight

// ---------------------------------------------------------------------------------------------
// Errors

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = uv_err_name(-err);
  std::string msg = std::string(name) + ": " + strerror(err) + ", " + syscall;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads a non-negative safe integer argument; false (with a pending exception) otherwise.
bool ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t* out) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    ThrowType(info.Env(), (std::string(what) + " must be a number").c_str());
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowType(info.Env(), (std::string(what) + " must be a non-negative safe integer").c_str());
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, uint8_t** data, size_t* len) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), "expected a Uint8Array or Buffer");
    return false;
  }
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

// ---------------------------------------------------------------------------------------------
// pwrite / pwritev / pread / fdatasync / fallocate / ftruncate

// Writes all of [data, data+len) at pos. Returns 0 or an errno.
int PwriteAll(int fd, const uint8_t* data, size_t len, int64_t pos) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, data, std::min(len, kMaxSyscallBytes), pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress on a regular file: treat as an I/O error
    data += n;
    len -= static_cast<size_t>(n);
    pos += n;
  }
  return 0;
}

Napi::Value Pwrite(const Napi::CallbackInfo& info) {
  int64_t fd, pos;
  uint8_t* data;
  size_t len;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgBytes(info, 1, &data, &len) ||
      !ArgInt(info, 2, "position", &pos))
    return info.Env().Undefined();
  int err = PwriteAll(static_cast<int>(fd), data, len, pos);
  if (err != 0) return ThrowErrno(info.Env(), err, "pwrite");
  return Napi::Number::New(info.Env(), static_cast<double>(len));
}

Napi::Value Pwritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, pos;
  if (!ArgInt(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) return ThrowType(env, "bufs must be an array");
  if (!ArgInt(info, 2, "position", &pos)) return env.Undefined();
  Napi::Array arr = info[1].As<Napi::Array>();
  uint32_t count = arr.Length();
  if (count > kMaxIov) return ThrowErrno(env, EINVAL, "pwritev");
  std::vector<iovec> iov;
  iov.reserve(count);
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      return ThrowType(env, "bufs must hold Uint8Arrays");
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    if (a.ByteLength() == 0) continue;
    iov.push_back({a.Data(), a.ByteLength()});
    total += a.ByteLength();
  }
  size_t first = 0;
  while (first < iov.size()) {
    ssize_t n = ::pwritev(static_cast<int>(fd), iov.data() + first,
                          static_cast<int>(iov.size() - first), pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ThrowErrno(env, errno, "pwritev");
    }
    if (n == 0) return ThrowErrno(env, EIO, "pwritev");
    pos += n;
    size_t done = static_cast<size_t>(n);
    while (first < iov.size() && done >= iov[first].iov_len) done -= iov[first++].iov_len;
    if (done > 0) {  // short write inside iov[first]
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  return Napi::Number::New(env, static_cast<double>(total));
}

Napi::Value Pread(const Napi::CallbackInfo& info) {
  int64_t fd, pos, want;
  uint8_t* data;
  size_t cap;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgBytes(info, 1, &data, &cap) ||
      !ArgInt(info, 2, "position", &pos) || !ArgInt(info, 3, "length", &want))
    return info.Env().Undefined();
  if (static_cast<uint64_t>(want) > cap) return ThrowErrno(info.Env(), ERANGE, "pread");
  size_t got = 0;
  while (got < static_cast<size_t>(want)) {
    size_t ask = std::min(static_cast<size_t>(want) - got, kMaxSyscallBytes);
    ssize_t n = ::pread(static_cast<int>(fd), data + got, ask, pos + static_cast<int64_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ThrowErrno(info.Env(), errno, "pread");
    }
    if (n == 0) break;  // end of file
    got += static_cast<size_t>(n);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(got));
}

Napi::Value Fdatasync(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  while (::fdatasync(static_cast<int>(fd)) != 0) {
    if (errno != EINTR) return ThrowErrno(info.Env(), errno, "fdatasync");
  }
  return info.Env().Undefined();
}

Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  int64_t fd, off, len;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgInt(info, 1, "offset", &off) ||
      !ArgInt(info, 2, "length", &len))
    return info.Env().Undefined();
  if (len == 0) return info.Env().Undefined();
  int r;
  do r = ::fallocate(static_cast<int>(fd), 0, off, len);
  while (r != 0 && errno == EINTR);
  if (r == 0) return info.Env().Undefined();
  int err = errno;
  if (err != EOPNOTSUPP && err != ENOSYS) return ThrowErrno(info.Env(), err, "fallocate");
  // The file system has no fallocate: posix_fallocate emulates it (glibc writes zeros).
  err = ::posix_fallocate(static_cast<int>(fd), off, len);
  if (err == 0) return info.Env().Undefined();
  if (err == EINVAL || err == EOPNOTSUPP) err = ENOTSUP;
  return ThrowErrno(info.Env(), err, "posix_fallocate");
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int64_t fd, len;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgInt(info, 1, "length", &len))
    return info.Env().Undefined();
  while (::ftruncate(static_cast<int>(fd), len) != 0) {
    if (errno != EINTR) return ThrowErrno(info.Env(), errno, "ftruncate");
  }
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Async work on the libuv thread pool. Each worker resolves or rejects its own promise; errors
// are reported through `err_`/`syscall_` so the rejection carries the errno code.

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "sluice_native"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Cleanup();
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(env, err_, syscall_).Value());
    } else {
      deferred_.Resolve(Result(env));
    }
  }
  void OnError(const Napi::Error& e) override {
    Cleanup();
    deferred_.Reject(e.Value());
  }
  // Runs on the owner (JS) thread once the work is done, before settling.
  virtual void Cleanup() {}

  int err_ = 0;
  const char* syscall_ = "";

 private:
  Napi::Promise::Deferred deferred_;
};

class FdatasyncWorker : public PromiseWorker {
 public:
  FdatasyncWorker(Napi::Env env, int fd) : PromiseWorker(env), fd_(fd) {}
  void Execute() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) {
        err_ = errno;
        syscall_ = "fdatasync";
        return;
      }
    }
  }

 private:
  int fd_;
};

Napi::Value FdatasyncAsync(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  auto* w = new FdatasyncWorker(info.Env(), static_cast<int>(fd));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------------------------------------
// sendfile: file range -> socket, on the thread pool (also splice and sendmapped, below).
//
// Both fds are dup'd on the JS thread when the call is made and closed on the JS thread when the
// promise settles, so a close of the original fds mid-send cannot redirect bytes to a reused fd
// number. The socket is non-blocking (libuv sets O_NONBLOCK): on EAGAIN the task waits for
// writability with poll() in slices of kPollSliceMs, checking the deadline and the optional
// cancel flag (an Int32Array whose element 0 the JS side sets to 1) between slices.

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// How a SendfileWorker moves the range.
enum class SendMode { kSendfile, kSplice, kMapped };

class SendfileWorker : public PromiseWorker {
 public:
  SendfileWorker(Napi::Env env, int sock, int file, int64_t pos, int64_t len, int64_t timeoutMs,
                 SendMode mode)
      : PromiseWorker(env), pos_(pos), len_(len), timeoutMs_(timeoutMs), mode_(mode) {
    sock_ = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (sock_ < 0) dupErr_ = errno;
    file_ = dupErr_ == 0 ? fcntl(file, F_DUPFD_CLOEXEC, 0) : -1;
    if (file_ < 0 && dupErr_ == 0) dupErr_ = errno;
  }
  ~SendfileWorker() override { CloseFds(); }

  void SetCancel(Napi::Int32Array flag) {
    cancelRef_ = Napi::Persistent(flag);
    cancel_ = flag.Data();
  }

  void Execute() override {
    if (dupErr_ != 0) return Fail(dupErr_, "dup");
    if (mode_ == SendMode::kSplice) return ExecuteSplice();
    if (mode_ == SendMode::kMapped) return ExecuteMapped();
    int64_t deadline = NowMs() + timeoutMs_;
    while (sent_ < len_) {
      if (Cancelled()) return Fail(ECANCELED, "sendfile");
      off_t off = static_cast<off_t>(pos_ + sent_);
      size_t ask = static_cast<size_t>(std::min<int64_t>(len_ - sent_, kMaxSyscallBytes));
      ssize_t n = ::sendfile(sock_, file_, &off, ask);
      if (n > 0) {
        sent_ += n;
        continue;
      }
      if (n == 0) return;  // end of file: the caller sees sent < length
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return Fail(errno, "sendfile");
      if (!WaitWritable(deadline)) return;
    }
  }

 protected:
  Napi::Value Result(Napi::Env env) override {
    return Napi::Number::New(env, static_cast<double>(sent_));
  }
  void Cleanup() override {
    CloseFds();
    if (!cancelRef_.IsEmpty()) cancelRef_.Reset();
  }

 private:
  // file -> pipe -> socket with splice(2) and a pipe of up to kPipeBytes, so each socket call
  // moves up to 1 MiB of page references (sendfile's internal pipe holds 16 pages).
  void ExecuteSplice() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Fail(errno, "pipe2");
    int pipeBytes = fcntl(p[1], F_SETPIPE_SZ, kPipeBytes);
    if (pipeBytes <= 0) pipeBytes = 16 * 4096;
    SpliceLoop(p[0], p[1], static_cast<size_t>(pipeBytes));
    ::close(p[0]);  // drops any page references still in the pipe after an error
    ::close(p[1]);
  }
  // The range mapped read-only (MAP_POPULATE) in windows of kMapWindowBytes, each written with
  // write(2): one copy on the sending side, from the page cache itself. Over loopback on kernel
  // 6.18 this moved 1.2-1.5x the bytes per second of sendfile, whose page references cost more
  // per byte there (bench/io/sendfile.ts; bench/io/raw-sendfile.c, modes 0 and 2).
  //
  // Safety: this process never reads the mapping; only the kernel does, inside write(2). A page
  // that cannot be read (the file truncated under the send, an I/O error) then fails the write
  // with EFAULT instead of raising SIGBUS, which would kill the process. The length is clamped
  // to the file's size first, so a file that ends early gives a short count, as sendfile does.
  void ExecuteMapped() {
    struct stat st;
    if (::fstat(file_, &st) != 0) return Fail(errno, "fstat");
    int64_t end = std::min<int64_t>(pos_ + len_, st.st_size);
    int64_t page = ::sysconf(_SC_PAGESIZE);
    int64_t deadline = NowMs() + timeoutMs_;
    while (pos_ + sent_ < end) {
      if (Cancelled()) return Fail(ECANCELED, "sendmapped");
      int64_t at = pos_ + sent_;
      int64_t mapFrom = at - at % page;
      int64_t mapBytes = std::min<int64_t>(end - mapFrom, kMapWindowBytes);
      void* m = ::mmap(nullptr, static_cast<size_t>(mapBytes), PROT_READ,
                       MAP_SHARED | MAP_POPULATE, file_, static_cast<off_t>(mapFrom));
      if (m == MAP_FAILED) return Fail(errno, "mmap");
      ::madvise(m, static_cast<size_t>(mapBytes), MADV_SEQUENTIAL);
      const char* from = static_cast<const char*>(m) + (at - mapFrom);
      bool ok = WriteAll(from, static_cast<size_t>(mapFrom + mapBytes - at), deadline);
      ::munmap(m, static_cast<size_t>(mapBytes));
      if (!ok) return;
    }
  }
  // Writes `bytes` to the socket, counting them into sent_; false (err_ set) on failure.
  bool WriteAll(const char* data, size_t bytes, int64_t deadline) {
    size_t done = 0;
    while (done < bytes) {
      ssize_t m = ::write(sock_, data + done, bytes - done);
      if (m > 0) {
        done += static_cast<size_t>(m);
        sent_ += m;
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        Fail(errno, "write");
        return false;
      }
      if (Cancelled()) {
        Fail(ECANCELED, "sendmapped");
        return false;
      }
      if (!WaitWritable(deadline)) return false;
    }
    return true;
  }
  void SpliceLoop(int pipeRead, int pipeWrite, size_t pipeBytes) {
    int64_t deadline = NowMs() + timeoutMs_;
    while (sent_ < len_) {
      if (Cancelled()) return Fail(ECANCELED, "splice");
      loff_t off = static_cast<loff_t>(pos_ + sent_);
      size_t ask = static_cast<size_t>(std::min<int64_t>(len_ - sent_, pipeBytes));
      ssize_t n = ::splice(file_, &off, pipeWrite, nullptr, ask, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(errno, "splice");
      }
      if (n == 0) return;  // end of file
      size_t inPipe = static_cast<size_t>(n);
      while (inPipe > 0) {
        bool more = sent_ + static_cast<int64_t>(inPipe) < len_;
        unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
        ssize_t m = ::splice(pipeRead, nullptr, sock_, nullptr, inPipe, flags);
        if (m > 0) {
          inPipe -= static_cast<size_t>(m);
          sent_ += m;
          continue;
        }
        if (m == 0) return Fail(EPIPE, "splice");
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return Fail(errno, "splice");
        if (Cancelled()) return Fail(ECANCELED, "splice");
        if (!WaitWritable(deadline)) return;
      }
    }
  }

  bool Cancelled() const {
    return cancel_ != nullptr && __atomic_load_n(cancel_, __ATOMIC_ACQUIRE) != 0;
  }
  void Fail(int err, const char* syscall) {
    err_ = err;
    syscall_ = syscall;
  }
  // Waits until the socket is writable. False (with err_ set) on timeout, cancel or poll error.
  bool WaitWritable(int64_t deadline) {
    for (;;) {
      if (Cancelled()) {
        Fail(ECANCELED, "sendfile");
        return false;
      }
      int64_t left = deadline - NowMs();
      if (left <= 0) {
        Fail(ETIMEDOUT, "sendfile");
        return false;
      }
      pollfd p = {sock_, POLLOUT, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, kPollSliceMs)));
      if (r < 0 && errno != EINTR) {
        Fail(errno, "poll");
        return false;
      }
      // POLLERR/POLLHUP: the next sendfile reports the real error (EPIPE, ECONNRESET).
      if (r > 0) return true;
    }
  }
  void CloseFds() {
    if (sock_ >= 0) ::close(sock_);
    if (file_ >= 0) ::close(file_);
    sock_ = file_ = -1;
  }

  int sock_ = -1;
  int file_ = -1;
  int dupErr_ = 0;
  int64_t pos_, len_, timeoutMs_;
  SendMode mode_;
  int64_t sent_ = 0;
  int32_t* cancel_ = nullptr;
  Napi::Reference<Napi::Int32Array> cancelRef_;
};

Napi::Value SendFileRange(const Napi::CallbackInfo& info, SendMode mode) {
  Napi::Env env = info.Env();
  int64_t sock, file, pos, len, timeoutMs;
  if (!ArgInt(info, 0, "socketFd", &sock) || !ArgInt(info, 1, "fileFd", &file) ||
      !ArgInt(info, 2, "position", &pos) || !ArgInt(info, 3, "length", &len) ||
      !ArgInt(info, 4, "timeoutMs", &timeoutMs))
    return env.Undefined();
  bool hasCancel = info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNull();
  if (hasCancel && (!info[5].IsTypedArray() ||
                    info[5].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
                    info[5].As<Napi::Int32Array>().ElementLength() < 1))
    return ThrowType(env, "cancel must be an Int32Array of length >= 1");
  auto* w = new SendfileWorker(env, static_cast<int>(sock), static_cast<int>(file), pos, len,
                               timeoutMs, mode);
  if (hasCancel) w->SetCancel(info[5].As<Napi::Int32Array>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------------------------------------
// sendNow / sendfileNow: sends on the calling thread that never wait. The network thread uses them
// for a response when nothing else of that connection is queued (Node's write queue empty, no
// thread-pool send running), so bytes cannot interleave; libuv keeps its sockets non-blocking,
// and MSG_DONTWAIT makes sure of it. Whatever the socket does not take now is sent by the caller
// through the usual paths. No fd is duplicated: the call returns before the caller's thread can
// close either fd.

// One sendmsg(2) of up to kMaxIov buffers; returns the bytes the socket took (0 when full).
Napi::Value SendNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsBoolean())
    return ThrowType(env, "expected (fd, buffers[], more)");
  Napi::Array bufs = info[1].As<Napi::Array>();
  uint32_t count = bufs.Length();
  if (count > kMaxIov) return ThrowType(env, "too many buffers");
  std::vector<struct iovec> iov(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value b = bufs.Get(i);
    if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      return ThrowType(env, "expected Uint8Array buffers");
    Napi::Uint8Array a = b.As<Napi::Uint8Array>();
    iov[i].iov_base = a.Data();
    iov[i].iov_len = a.ByteLength();
  }
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  int flags = MSG_DONTWAIT | MSG_NOSIGNAL | (info[2].As<Napi::Boolean>().Value() ? MSG_MORE : 0);
  ssize_t n;
  do n = ::sendmsg(static_cast<int>(fd), &msg, flags);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, 0);
    return ThrowErrno(env, errno, "sendmsg");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// sendfile(2) of [position, position + length) until done, the socket is full (EAGAIN) or the
// file ends; returns the bytes sent.
Napi::Value SendfileNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t sock, file, pos, len;
  if (!ArgInt(info, 0, "socketFd", &sock) || !ArgInt(info, 1, "fileFd", &file) ||
      !ArgInt(info, 2, "position", &pos) || !ArgInt(info, 3, "length", &len))
    return env.Undefined();
  int64_t sent = 0;
  while (sent < len) {
    off_t off = static_cast<off_t>(pos + sent);
    size_t ask = static_cast<size_t>(std::min<int64_t>(len - sent, kMaxSyscallBytes));
    ssize_t n = ::sendfile(static_cast<int>(sock), static_cast<int>(file), &off, ask);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n == 0) break;  // end of file: the caller sees sent < length
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return ThrowErrno(env, errno, "sendfile");
  }
  return Napi::Number::New(env, static_cast<double>(sent));
}

Napi::Value Sendfile(const Napi::CallbackInfo& info) {
  return SendFileRange(info, SendMode::kSendfile);
}
Napi::Value Splice(const Napi::CallbackInfo& info) {
  return SendFileRange(info, SendMode::kSplice);
}
Napi::Value Sendmapped(const Napi::CallbackInfo& info) {
  return SendFileRange(info, SendMode::kMapped);
}

// ---------------------------------------------------------------------------------------------
// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78).
//
// The hardware path runs three independent CRC streams over three adjacent blocks (the crc32
// instruction has a latency of 3 cycles and a throughput of 1 per cycle), then merges them:
// crc(A || B) = shift(crc(A), |B|) ^ crc0(B), where shift appends |B| zero bytes. The shift is a
// linear map on the 32-bit state, tabulated per block length as four 256-entry tables.

constexpr uint32_t kPoly = 0x82f63b78u;
constexpr size_t kLongBlock = 8192;
constexpr size_t kShortBlock = 256;

struct CrcTables {
  uint32_t byte[256];
  uint32_t longShift[4][256];
  uint32_t shortShift[4][256];
  bool hardware = false;
};

// Applies the 32x32 GF(2) matrix `mat` (column i = image of bit i) to `vec`.
uint32_t MatTimes(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (int i = 0; vec != 0; i++, vec >>= 1)
    if (vec & 1) sum ^= mat[i];
  return sum;
}

// out = a * b (apply b, then a).
void MatMul(uint32_t* out, const uint32_t* a, const uint32_t* b) {
  uint32_t r[32];
  for (int i = 0; i < 32; i++) r[i] = MatTimes(a, b[i]);
  std::memcpy(out, r, sizeof r);
}

// Tables mapping a raw CRC state to the state after `len` more zero bytes.
void BuildShift(uint32_t table[4][256], size_t len) {
  uint32_t power[32], op[32];
  power[0] = kPoly;  // one zero bit
  for (int i = 1; i < 32; i++) power[i] = 1u << (i - 1);
  for (int i = 0; i < 32; i++) op[i] = 1u << i;  // identity
  for (uint64_t bits = static_cast<uint64_t>(len) * 8; bits != 0; bits >>= 1) {
    if (bits & 1) MatMul(op, power, op);
    MatMul(power, power, power);
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int k = 0; k < 4; k++) table[k][n] = MatTimes(op, n << (8 * k));
}

uint32_t Shift(const uint32_t table[4][256], uint32_t crc) {
  return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
         table[3][crc >> 24];
}

CrcTables BuildTables() {
  CrcTables t;
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t.byte[n] = c;
  }
  BuildShift(t.longShift, kLongBlock);
  BuildShift(t.shortShift, kShortBlock);
#if defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) t.hardware = (ecx & bit_SSE4_2) != 0;
#endif
  return t;
}

// Built once per process (a function-local static is initialized thread-safely).
const CrcTables& Tables() {
  static const CrcTables tables = BuildTables();
  return tables;
}

uint32_t CrcSoftware(const CrcTables& t, uint32_t crc, const uint8_t* p, size_t n) {
  while (n--) crc = t.byte[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// Three interleaved streams over blocks of `block` bytes while at least 3 blocks remain.
__attribute__((target("sse4.2"))) uint64_t CrcTriple(const uint32_t table[4][256], size_t block,
                                                      uint64_t c0, const uint8_t** pp, size_t* np) {
  const uint8_t* p = *pp;
  size_t n = *np;
  while (n >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + block;
    do {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p, 8);
      std::memcpy(&w1, p + block, 8);
      std::memcpy(&w2, p + 2 * block, 8);
      c0 = _mm_crc32_u64(c0, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
      p += 8;
    } while (p < end);
    c0 = Shift(table, static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    c0 = Shift(table, static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c2);
    p += 2 * block;
    n -= 3 * block;
  }
  *pp = p;
  *np = n;
  return c0;
}

__attribute__((target("sse4.2"))) uint32_t CrcHardware(const CrcTables& t, uint32_t crc,
                                                        const uint8_t* p, size_t n) {
  uint64_t c0 = crc;
  for (; n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0; n--) c0 = _mm_crc32_u8(c0, *p++);
  c0 = CrcTriple(t.longShift, kLongBlock, c0, &p, &n);
  c0 = CrcTriple(t.shortShift, kShortBlock, c0, &p, &n);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c0 = _mm_crc32_u64(c0, w);
  }
  for (; n > 0; n--) c0 = _mm_crc32_u8(c0, *p++);
  return static_cast<uint32_t>(c0);
}
#endif

uint32_t Crc32c(uint32_t init, const uint8_t* p, size_t n) {
  const CrcTables& t = Tables();
  uint32_t crc = ~init;
#if defined(__x86_64__)
  if (t.hardware) return ~CrcHardware(t, crc, p, n);
#endif
  return ~CrcSoftware(t, crc, p, n);
}

Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t len;
  if (!ArgBytes(info, 0, &data, &len)) return info.Env().Undefined();
  uint32_t init = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) return ThrowType(info.Env(), "init must be a number");
    init = info[1].As<Napi::Number>().Uint32Value();
  }
  return Napi::Number::New(info.Env(), Crc32c(init, data, len));
}

Napi::Value Crc32cSoftwareJs(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t len;
  if (!ArgBytes(info, 0, &data, &len)) return info.Env().Undefined();
  uint32_t init = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value()
                                                          : 0;
  return Napi::Number::New(info.Env(), ~CrcSoftware(Tables(), ~init, data, len));
}

Napi::Value Crc32cHardware(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Tables().hardware);
}

// flock(fd, LOCK_EX | LOCK_NB): an exclusive advisory lock, refused at once (EWOULDBLOCK) while
// another open file description holds it, in this process or another. Released by closing the
// fd, or by the kernel when the process dies.
Napi::Value FlockExclusive(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  int r;
  do r = ::flock(static_cast<int>(fd), LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  if (r != 0) return ThrowErrno(info.Env(), errno, "flock");
  return info.Env().Undefined();
}

// Sets SO_SNDBUF and SO_RCVBUF of socket `fd` (a value of 0 leaves that one to the kernel's
// autotuning) and returns the sizes the kernel reports afterwards, [send, receive]. Linux doubles
// a requested size for its bookkeeping and caps it at net.core.wmem_max / rmem_max; a size set
// this way turns that direction's autotuning off for the socket.
Napi::Value SetSocketBuffers(const Napi::CallbackInfo& info) {
  int64_t fd, sendBytes, receiveBytes;
  if (!ArgInt(info, 0, "fd", &fd) || !ArgInt(info, 1, "sendBytes", &sendBytes) ||
      !ArgInt(info, 2, "receiveBytes", &receiveBytes)) {
    return info.Env().Undefined();
  }
  const int kBytesMax = 1 << 30;
  if (sendBytes > kBytesMax || receiveBytes > kBytesMax) {
    Napi::RangeError::New(info.Env(), "buffer size out of range").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const int sock = static_cast<int>(fd);
  const int options[2] = {SO_SNDBUF, SO_RCVBUF};
  const int64_t wanted[2] = {sendBytes, receiveBytes};
  Napi::Array result = Napi::Array::New(info.Env(), 2);
  for (int i = 0; i < 2; i++) {
    if (wanted[i] > 0) {
      int value = static_cast<int>(wanted[i]);
      if (::setsockopt(sock, SOL_SOCKET, options[i], &value, sizeof value) != 0) {
        return ThrowErrno(info.Env(), errno, "setsockopt");
      }
    }
    int actual = 0;
    socklen_t length = sizeof actual;
    if (::getsockopt(sock, SOL_SOCKET, options[i], &actual, &length) != 0) {
      return ThrowErrno(info.Env(), errno, "getsockopt");
    }
    result.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), actual));
  }
  return result;
}

#if defined(__linux__)
Napi::Value TcpCongestionOf(Napi::Env env, int sock) {
  char name[32] = {0};  // TCP_CA_NAME_MAX is 16
  socklen_t length = sizeof name - 1;
  if (::getsockopt(sock, IPPROTO_TCP, TCP_CONGESTION, name, &length) != 0) {
    return ThrowErrno(env, errno, "getsockopt");
  }
  return Napi::String::New(env, name);
}
#endif

// Sets the TCP congestion control of socket `fd` (TCP_CONGESTION, Linux) to `name`, such as
// "reno" or "cubic". Unprivileged processes may pick only the names listed in
// /proc/sys/net/ipv4/tcp_allowed_congestion_control (EPERM otherwise); ENOENT for a name the
// kernel does not have. Returns the name in effect afterwards; off Linux, throws ENOTSUP.
Napi::Value SetTcpCongestion(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(info.Env(), "name must be a string").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
#if defined(__linux__)
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  const int sock = static_cast<int>(fd);
  if (::setsockopt(sock, IPPROTO_TCP, TCP_CONGESTION, name.data(), name.size()) != 0) {
    return ThrowErrno(info.Env(), errno, "setsockopt");
  }
  return TcpCongestionOf(info.Env(), sock);
#else
  return ThrowErrno(info.Env(), ENOTSUP, "setsockopt");
#endif
}

// The TCP congestion control of socket `fd` (Linux; ENOTSUP elsewhere).
Napi::Value GetTcpCongestion(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, "fd", &fd)) return info.Env().Undefined();
#if defined(__linux__)
  return TcpCongestionOf(info.Env(), static_cast<int>(fd));
#else
  return ThrowErrno(info.Env(), ENOTSUP, "getsockopt");
#endif
}

// ---------------------------------------------------------------------------------------------
// Doorbells
//
// A doorbell is a libuv async handle on the event loop of the thread that opened it, plus a JS
// callback. Any thread may ring it by id; the owning loop then runs the callback once for all
// rings since its last run (uv_async_send coalesces), followed by a microtask checkpoint
// (napi_make_callback). It replaces `Atomics.waitAsync` where one thread wakes another's event
// loop thousands of times a second: every waitAsync leaves 100-160 bytes of garbage in V8's old
// generation, a doorbell wait about a tenth of that (bench/threads/wait-async-heap.ts).
//
// Lifetime: the table below maps ids to bells under one mutex, so a ring racing a close either
// finds the bell open (uv_async_send is thread-safe) or finds the slot empty (returns false).
// A bell is closed by `bellClose` or, if its thread's environment ends first, by a cleanup hook.
// The handle starts unreferenced: an open bell does not keep its loop alive. A thread that awaits
// a ring references it for the wait (`bellRef`): otherwise its loop could end with a ring sent but
// its callback not yet run (Node drains V8's pending tasks before a loop ends, not libuv's).

constexpr int kBellsMax = 1024;

struct Bell {
  uv_async_t async;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int id;
};

std::mutex gBellsMutex;
Bell* gBells[kBellsMax] = {};  // guarded by gBellsMutex

void OnBellRung(uv_async_t* handle) {
  Bell* bell = static_cast<Bell*>(handle->data);
  napi_env env = bell->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn;
  napi_value recv;
  if (napi_get_reference_value(env, bell->callback, &fn) == napi_ok && fn != nullptr &&
      napi_get_global(env, &recv) == napi_ok) {
    napi_status st = napi_make_callback(env, bell->context, recv, fn, 0, nullptr, nullptr);
    if (st == napi_pending_exception) {
      // The callback threw: report it as Node reports any uncaught exception.
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

void CloseBell(Bell* bell) {
  {
    std::lock_guard<std::mutex> lock(gBellsMutex);
    if (gBells[bell->id] == bell) gBells[bell->id] = nullptr;
  }
  napi_delete_reference(bell->env, bell->callback);
  napi_async_destroy(bell->env, bell->context);
  uv_close(reinterpret_cast<uv_handle_t*>(&bell->async),
           [](uv_handle_t* h) { delete static_cast<Bell*>(h->data); });
}

void CloseBellAtExit(void* arg) { CloseBell(static_cast<Bell*>(arg)); }

Napi::Value BellOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "bellOpen(callback)");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    return ThrowErrno(env, EINVAL, "bellOpen");
  }
  auto* bell = new Bell();
  bell->env = env;
  bell->id = -1;
  if (uv_async_init(loop, &bell->async, OnBellRung) != 0) {
    delete bell;
    return ThrowErrno(env, EINVAL, "uv_async_init");
  }
  bell->async.data = bell;
  uv_unref(reinterpret_cast<uv_handle_t*>(&bell->async));
  napi_create_reference(env, info[0], 1, &bell->callback);
  napi_async_init(env, nullptr, Napi::String::New(env, "sluice.doorbell"), &bell->context);
  {
    std::lock_guard<std::mutex> lock(gBellsMutex);
    for (int i = 0; i < kBellsMax; i++) {
      if (gBells[i] == nullptr) {
        gBells[i] = bell;
        bell->id = i;
        break;
      }
    }
  }
  if (bell->id < 0) {
    bell->id = 0;  // CloseBell compares the slot with the bell: slot 0 is not this one
    CloseBell(bell);
    return ThrowErrno(env, EMFILE, "bellOpen");
  }
  napi_add_env_cleanup_hook(env, CloseBellAtExit, bell);
  return Napi::Number::New(env, bell->id);
}

Napi::Value BellRing(const Napi::CallbackInfo& info) {
  int64_t id;
  if (!ArgInt(info, 0, "id", &id)) return info.Env().Undefined();
  bool rung = false;
  if (id < kBellsMax) {
    std::lock_guard<std::mutex> lock(gBellsMutex);
    Bell* bell = gBells[id];
    if (bell != nullptr) rung = uv_async_send(&bell->async) == 0;
  }
  return Napi::Boolean::New(info.Env(), rung);
}

Napi::Value BellRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id;
  if (!ArgInt(info, 0, "id", &id)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBoolean()) return ThrowType(env, "bellRef(id, on)");
  Bell* bell = nullptr;
  if (id < kBellsMax) {
    std::lock_guard<std::mutex> lock(gBellsMutex);
    bell = gBells[id];
  }
  if (bell == nullptr || bell->env != env) return ThrowErrno(env, EBADF, "bellRef");
  auto* handle = reinterpret_cast<uv_handle_t*>(&bell->async);
  if (info[1].As<Napi::Boolean>().Value()) {
    uv_ref(handle);
  } else {
    uv_unref(handle);
  }
  return env.Undefined();
}

Napi::Value BellClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t id;
  if (!ArgInt(info, 0, "id", &id)) return env.Undefined();
  Bell* bell = nullptr;
  if (id < kBellsMax) {
    std::lock_guard<std::mutex> lock(gBellsMutex);
    bell = gBells[id];
  }
  if (bell == nullptr || bell->env != env) return ThrowErrno(env, EBADF, "bellClose");
  napi_remove_env_cleanup_hook(env, CloseBellAtExit, bell);
  CloseBell(bell);
  return env.Undefined();
}

// ---------------------------------------------------------------------------------------------
// Thread scheduling

// Puts the calling thread (not the process: on Linux pid 0 names the calling thread) under
// SCHED_BATCH, keeping its nice value. A SCHED_BATCH thread that wakes up does not preempt the
// thread running on its CPU; it runs when a CPU is idle or at the next scheduling decision. The
// broker's partition owners use it so that the network thread that wakes them is not switched
// out at once on a busy machine. False when the kernel refuses it, and off Linux.
Napi::Value ScheduleThreadAsBatch(const Napi::CallbackInfo& info) {
#if defined(__linux__)
  struct sched_param param;
  std::memset(&param, 0, sizeof param);
  return Napi::Boolean::New(info.Env(), ::sched_setscheduler(0, SCHED_BATCH, &param) == 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value AbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), 7);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Tables();
  exports.Set("abiVersion", Napi::Function::New(env, AbiVersion));
  exports.Set("scheduleThreadAsBatch", Napi::Function::New(env, ScheduleThreadAsBatch));
  exports.Set("bellOpen", Napi::Function::New(env, BellOpen));
  exports.Set("bellRing", Napi::Function::New(env, BellRing));
  exports.Set("bellClose", Napi::Function::New(env, BellClose));
  exports.Set("bellRef", Napi::Function::New(env, BellRef));
  exports.Set("pwrite", Napi::Function::New(env, Pwrite));
  exports.Set("pwritev", Napi::Function::New(env, Pwritev));
  exports.Set("pread", Napi::Function::New(env, Pread));
  exports.Set("fdatasync", Napi::Function::New(env, Fdatasync));
  exports.Set("fdatasyncAsync", Napi::Function::New(env, FdatasyncAsync));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate));
  exports.Set("flockExclusive", Napi::Function::New(env, FlockExclusive));
  exports.Set("sendfile", Napi::Function::New(env, Sendfile));
  exports.Set("sendmapped", Napi::Function::New(env, Sendmapped));
  exports.Set("splice", Napi::Function::New(env, Splice));
  exports.Set("sendNow", Napi::Function::New(env, SendNow));
  exports.Set("sendfileNow", Napi::Function::New(env, SendfileNow));
  exports.Set("setSocketBuffers", Napi::Function::New(env, SetSocketBuffers));
  exports.Set("setTcpCongestion", Napi::Function::New(env, SetTcpCongestion));
  exports.Set("getTcpCongestion", Napi::Function::New(env, GetTcpCongestion));
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs));
  exports.Set("crc32cSoftware", Napi::Function::New(env, Crc32cSoftwareJs));
  exports.Set("crc32cHardware", Napi::Function::New(env, Crc32cHardware));
  return exports;
}

}  // namespace

NODE_API_MODULE(sluice_native, Init)
