// isolane_shm: shared memory between processes as a real SharedArrayBuffer, and an eventfd doorbell.
//
// - create(bytes) -> { fd, buffer }: a sealed memfd (it can no longer shrink or grow, so a peer cannot
//   make our mapping SIGBUS by truncating it), mapped MAP_SHARED and wrapped with
//   v8::SharedArrayBuffer::NewBackingStore; the backing store's deleter munmaps it. (N-API cannot make a
//   SharedArrayBuffer in Node 20, hence the V8 API.)
// - open(fd, bytes) -> SharedArrayBuffer: maps an inherited memfd the same way.
// - doorbell() -> fd: an eventfd. ring(fd) adds 1 to its counter; a waiter reads (and so resets) it.
// - watch(fd, onRing): a uv_poll_t on the calling thread's own libuv loop; never blocks it. Rings that
//   arrive before the callback runs coalesce into one call.
// - waitSync(fd, timeoutMs): a blocking ppoll() for a worker's spin-then-sleep loop.
// - yieldCpu(): sched_yield(), so that a side polling shared memory lets a peer on the same core run;
//   currentCpu(): sched_getcpu(), so that it knows when it does.
//
// Every fd made here is close-on-exec: a child gets one only through an explicit stdio slot (libuv
// dup2()s it there, which clears the flag on the child's copy), so it never leaks into the parent's
// other children.
//
// Context-aware (NODE_MODULE_INIT): loads in the main thread and in worker threads. A watch still open
// when its thread's environment tears down is closed by an async cleanup hook, so a worker thread that
// exits or is terminated with a watch open does not leave a handle on its loop.

#include <errno.h>
#include <fcntl.h>
#include <node.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <set>

namespace isolane_shm {

using v8::Context;
using v8::Exception;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::ObjectTemplate;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

// ---------------------------------------------------------------------------------------------------
// Helpers

void ThrowTypeError(Isolate* isolate, const char* message) {
  isolate->ThrowException(Exception::TypeError(String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

void ThrowError(Isolate* isolate, const char* message) {
  isolate->ThrowException(Exception::Error(String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

void ThrowErrno(Isolate* isolate, int err, const char* syscall) {
  isolate->ThrowException(node::ErrnoException(isolate, err, syscall));
}

Local<String> Str(Isolate* isolate, const char* s) {
  return String::NewFromUtf8(isolate, s, v8::NewStringType::kInternalized).ToLocalChecked();
}

// A file descriptor argument: an integer in [0, 2^31).
bool ArgFd(const FunctionCallbackInfo<Value>& args, int index, int* fd) {
  Local<Value> v = args[index];
  if (!v->IsNumber()) {
    ThrowTypeError(args.GetIsolate(), "fd must be a non-negative integer");
    return false;
  }
  double d = v.As<Number>()->Value();
  if (!(d >= 0 && d <= INT32_MAX && std::floor(d) == d)) {
    ThrowTypeError(args.GetIsolate(), "fd must be a non-negative integer");
    return false;
  }
  *fd = static_cast<int>(d);
  return true;
}

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// A size argument: an integer in [1, 2^53), rounded up to a whole number of pages.
bool ArgBytes(const FunctionCallbackInfo<Value>& args, int index, size_t* bytes) {
  Local<Value> v = args[index];
  double d = v->IsNumber() ? v.As<Number>()->Value() : NAN;
  if (!(d >= 1 && d <= 9007199254740991.0 && std::floor(d) == d)) {
    ThrowTypeError(args.GetIsolate(), "bytes must be a positive integer");
    return false;
  }
  size_t page = PageSize();
  size_t n = static_cast<size_t>(d);
  *bytes = (n + page - 1) / page * page;
  return true;
}

void Unmap(void* data, size_t length, void* /*deleter_data*/) { munmap(data, length); }

// Maps `length` bytes of `fd` read-write and shared, as a SharedArrayBuffer that unmaps when collected.
// Throws and returns an empty handle on failure.
Local<SharedArrayBuffer> MapShared(Isolate* isolate, int fd, size_t length) {
  void* data = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    ThrowErrno(isolate, errno, "mmap");
    return Local<SharedArrayBuffer>();
  }
  std::shared_ptr<v8::BackingStore> store = SharedArrayBuffer::NewBackingStore(data, length, Unmap, nullptr);
  return SharedArrayBuffer::New(isolate, std::move(store));
}

// ---------------------------------------------------------------------------------------------------
// Shared memory

// create(bytes): { fd, buffer }
void Create(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  size_t length;
  if (!ArgBytes(args, 0, &length)) return;
  int fd = memfd_create("isolane-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return ThrowErrno(isolate, errno, "memfd_create");
  if (ftruncate(fd, static_cast<off_t>(length)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "ftruncate");
  }
  // A peer that shrank the file would make every access past the new end a SIGBUS in this process.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "fcntl(F_ADD_SEALS)");
  }
  Local<SharedArrayBuffer> buffer = MapShared(isolate, fd, length);
  if (buffer.IsEmpty()) {
    close(fd);
    return;
  }
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> result = Object::New(isolate);
  result->Set(context, Str(isolate, "fd"), Integer::New(isolate, fd)).Check();
  result->Set(context, Str(isolate, "buffer"), buffer).Check();
  args.GetReturnValue().Set(result);
}

// open(fd, bytes): SharedArrayBuffer
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  size_t length;
  if (!ArgFd(args, 0, &fd) || !ArgBytes(args, 1, &length)) return;
  struct stat st;
  if (fstat(fd, &st) < 0) return ThrowErrno(isolate, errno, "fstat");
  // Mapping past the end of the file would turn every access there into a SIGBUS.
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < length) {
    return ThrowError(isolate, "open: fd is not a shared memory file of at least that many bytes");
  }
  Local<SharedArrayBuffer> buffer = MapShared(isolate, fd, length);
  if (!buffer.IsEmpty()) args.GetReturnValue().Set(buffer);
}

// ---------------------------------------------------------------------------------------------------
// Doorbells

// Fds with an open watch in this process (any thread): close() refuses them, watch() refuses a second.
std::mutex watched_mutex;
std::set<int> watched_fds;

bool IsWatched(int fd) {
  std::lock_guard<std::mutex> lock(watched_mutex);
  return watched_fds.count(fd) != 0;
}

// doorbell(): fd
void Doorbell(const FunctionCallbackInfo<Value>& args) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return ThrowErrno(args.GetIsolate(), errno, "eventfd");
  args.GetReturnValue().Set(fd);
}

// ring(fd)
void Ring(const FunctionCallbackInfo<Value>& args) {
  int fd;
  if (!ArgFd(args, 0, &fd)) return;
  const uint64_t one = 1;
  ssize_t n;
  do n = write(fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  // EAGAIN: the counter is at its maximum, so the bell is already ringing.
  if (n < 0 && errno != EAGAIN) return ThrowErrno(args.GetIsolate(), errno, "write");
}

// Reads (and so resets) the counter. True if it was rung; false if another waiter got there first.
bool Drain(int fd, int* err) {
  uint64_t value;
  ssize_t n;
  do n = read(fd, &value, sizeof value);
  while (n < 0 && errno == EINTR);
  *err = n < 0 && errno != EAGAIN ? errno : 0;
  return n == sizeof value;
}

double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// waitSync(fd, timeoutMs): true if rung before the timeout. Blocks the calling thread.
void WaitSync(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  if (!ArgFd(args, 0, &fd)) return;
  double timeout = args[1]->IsNumber() ? args[1].As<Number>()->Value() : NAN;
  if (!(timeout >= 0)) return ThrowTypeError(isolate, "timeoutMs must be a non-negative number or Infinity");
  const bool forever = std::isinf(timeout);
  const double deadline = forever ? 0 : NowMs() + timeout;
  for (;;) {
    struct timespec ts;
    struct timespec* tsp = nullptr;
    if (!forever) {
      double left = deadline - NowMs();
      if (left < 0) left = 0;
      ts.tv_sec = static_cast<time_t>(left / 1e3);
      ts.tv_nsec = static_cast<long>((left - ts.tv_sec * 1e3) * 1e6);
      tsp = &ts;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = ppoll(&p, 1, tsp, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ThrowErrno(isolate, errno, "ppoll");
    }
    if (r == 0) return args.GetReturnValue().Set(false);
    if (p.revents & POLLNVAL) return ThrowErrno(isolate, EBADF, "ppoll");
    int err;
    if (Drain(fd, &err)) return args.GetReturnValue().Set(true);
    if (err) return ThrowErrno(isolate, err, "read");
    // Someone else read the counter between our poll and our read: wait on, if there is time left.
    if (!forever && NowMs() >= deadline) return args.GetReturnValue().Set(false);
  }
}

// yieldCpu(): sched_yield(). A side polling for the other lets it run when both share a core.
void YieldCpu(const FunctionCallbackInfo<Value>& /*args*/) { sched_yield(); }

// currentCpu(): the CPU this thread runs on now (sched_getcpu, through the vDSO: tens of ns), or -1.
void CurrentCpu(const FunctionCallbackInfo<Value>& args) { args.GetReturnValue().Set(sched_getcpu()); }

// close(fd)
void Close(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  if (!ArgFd(args, 0, &fd)) return;
  if (IsWatched(fd)) return ThrowError(isolate, "close: fd has an open watch; close the watch first");
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(isolate, errno, "close");
}

// ---------------------------------------------------------------------------------------------------
// watch(fd, onRing): { close(), ref(), unref() }

struct Watch {
  uv_poll_t poll;
  Isolate* isolate;
  int fd;
  bool closed = false;
  Global<Context> context;
  Global<Function> callback;
  Global<Object> handle;  // the object returned to JS (receiver of the callback)
  node::async_context async_context;
  node::AsyncCleanupHookHandle cleanup;
  void (*cleanup_done)(void*) = nullptr;  // set when the environment tears down
  void* cleanup_done_arg = nullptr;
};

void OnClosed(uv_handle_t* h) {
  Watch* w = static_cast<Watch*>(h->data);
  w->context.Reset();
  w->callback.Reset();
  w->handle.Reset();
  if (w->cleanup_done) w->cleanup_done(w->cleanup_done_arg);
  delete w;
}

// Stops watching. `from_cleanup`: the environment is going away, so no async_hooks destroy event.
void CloseWatch(Watch* w, bool from_cleanup) {
  if (w->closed) return;
  w->closed = true;
  {
    std::lock_guard<std::mutex> lock(watched_mutex);
    watched_fds.erase(w->fd);
  }
  if (!from_cleanup) {
    HandleScope scope(w->isolate);
    Local<Object> handle = w->handle.Get(w->isolate);
    handle->SetAlignedPointerInInternalField(0, nullptr);
    node::EmitAsyncDestroy(w->isolate, w->async_context);
    node::RemoveEnvironmentCleanupHook(std::move(w->cleanup));
  }
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

void OnCleanup(void* arg, void (*done)(void*), void* done_arg) {
  Watch* w = static_cast<Watch*>(arg);
  w->cleanup_done = done;
  w->cleanup_done_arg = done_arg;
  CloseWatch(w, true);
}

void OnPoll(uv_poll_t* h, int status, int /*events*/) {
  Watch* w = static_cast<Watch*>(h->data);
  if (w->closed) return;
  Isolate* isolate = w->isolate;
  HandleScope scope(isolate);
  Local<Context> context = w->context.Get(isolate);
  Context::Scope context_scope(context);
  Local<Object> recv = w->handle.Get(isolate);
  Local<Function> callback = w->callback.Get(isolate);
  int err = 0;
  if (status == 0 && !Drain(w->fd, &err) && err == 0) return;  // another waiter read the counter first
  if (status < 0 || err) {
    // The fd is unusable (closed under us, say): stop watching and tell the callback.
    Local<Value> error = status < 0 ? node::UVException(isolate, status, "uv_poll")
                                    : node::ErrnoException(isolate, err, "read");
    CloseWatch(w, false);
    node::MakeCallback(isolate, recv, callback, 1, &error, w->async_context);
    return;
  }
  // Runs the callback, then the microtask queue and process.nextTick; a throw is an uncaught exception.
  node::MakeCallback(isolate, recv, callback, 0, nullptr, w->async_context);
}

Watch* WatchOf(const FunctionCallbackInfo<Value>& args) {
  Local<Object> handle = args.Data().As<Object>();
  return static_cast<Watch*>(handle->GetAlignedPointerFromInternalField(0));
}

void WatchClose(const FunctionCallbackInfo<Value>& args) {
  if (Watch* w = WatchOf(args)) CloseWatch(w, false);
}

void WatchRef(const FunctionCallbackInfo<Value>& args) {
  if (Watch* w = WatchOf(args)) uv_ref(reinterpret_cast<uv_handle_t*>(&w->poll));
}

void WatchUnref(const FunctionCallbackInfo<Value>& args) {
  if (Watch* w = WatchOf(args)) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
}

void StartWatch(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  if (!ArgFd(args, 0, &fd)) return;
  if (!args[1]->IsFunction()) return ThrowTypeError(isolate, "onRing must be a function");
  Local<Context> context = isolate->GetCurrentContext();
  {
    std::lock_guard<std::mutex> lock(watched_mutex);
    if (!watched_fds.insert(fd).second) return ThrowError(isolate, "watch: fd is already watched");
  }
  Watch* w = new Watch();
  w->isolate = isolate;
  w->fd = fd;
  int r = uv_poll_init(node::GetCurrentEventLoop(isolate), &w->poll, fd);
  w->poll.data = w;
  const bool registered = r == 0;
  if (registered) r = uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  if (r != 0) {
    {
      std::lock_guard<std::mutex> lock(watched_mutex);
      watched_fds.erase(fd);
    }
    isolate->ThrowException(node::UVException(isolate, r, registered ? "uv_poll_start" : "uv_poll_init"));
    // A failed uv_poll_init registered nothing; after a failed uv_poll_start the handle must be closed.
    if (!registered) {
      delete w;
    } else {
      w->closed = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
    }
    return;
  }

  Local<ObjectTemplate> tmpl = ObjectTemplate::New(isolate);
  tmpl->SetInternalFieldCount(1);
  Local<Object> handle = tmpl->NewInstance(context).ToLocalChecked();
  handle->SetAlignedPointerInInternalField(0, w);
  const struct {
    const char* name;
    v8::FunctionCallback fn;
  } methods[] = {{"close", WatchClose}, {"ref", WatchRef}, {"unref", WatchUnref}};
  for (const auto& m : methods) {
    Local<Function> fn = Function::New(context, m.fn, handle, 0).ToLocalChecked();
    handle->Set(context, Str(isolate, m.name), fn).Check();
  }
  w->context.Reset(isolate, context);
  w->callback.Reset(isolate, args[1].As<Function>());
  w->handle.Reset(isolate, handle);
  w->async_context = node::EmitAsyncInit(isolate, handle, "isolane:doorbell");
  w->cleanup = node::AddEnvironmentCleanupHook(isolate, OnCleanup, w);
  args.GetReturnValue().Set(handle);
}

}  // namespace isolane_shm

NODE_MODULE_INIT(/* exports, module, context */) {
  using namespace isolane_shm;
  NODE_SET_METHOD(exports, "create", Create);
  NODE_SET_METHOD(exports, "open", Open);
  NODE_SET_METHOD(exports, "doorbell", Doorbell);
  NODE_SET_METHOD(exports, "ring", Ring);
  NODE_SET_METHOD(exports, "watch", StartWatch);
  NODE_SET_METHOD(exports, "waitSync", WaitSync);
  NODE_SET_METHOD(exports, "close", Close);
  NODE_SET_METHOD(exports, "yieldCpu", YieldCpu);
  NODE_SET_METHOD(exports, "currentCpu", CurrentCpu);
  (void)module;
  (void)context;
}
