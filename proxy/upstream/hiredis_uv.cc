#include "proxy/upstream/hiredis_uv.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace dp::upstream {

namespace {

struct Events {
  uv_poll_t poll{};
  redisAsyncContext* ac = nullptr;  // null once hiredis cleaned up
  int events = 0;
};

void on_poll(uv_poll_t* handle, int status, int events) {
  auto* e = static_cast<Events*>(handle->data);
  if (status < 0) {
    // POLLERR/POLLHUP: libuv stopped the handle.  A read surfaces the
    // socket error to hiredis, which then disconnects (callbacks get null).
    if (e->ac) redisAsyncHandleRead(e->ac);
    return;
  }
  if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
  if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

void update(Events* e, int events) {
  e->events = events;
  if (events) uv_poll_start(&e->poll, events, on_poll);
  else uv_poll_stop(&e->poll);
}

void add_read(void* p) { auto* e = static_cast<Events*>(p); update(e, e->events | UV_READABLE); }
void del_read(void* p) { auto* e = static_cast<Events*>(p); update(e, e->events & ~UV_READABLE); }
void add_write(void* p) { auto* e = static_cast<Events*>(p); update(e, e->events | UV_WRITABLE); }
void del_write(void* p) { auto* e = static_cast<Events*>(p); update(e, e->events & ~UV_WRITABLE); }

void cleanup(void* p) {
  auto* e = static_cast<Events*>(p);
  e->ac = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), [](uv_handle_t* h) { delete static_cast<Events*>(h->data); });
}

}  // namespace

int attach_hiredis_to_uv(redisAsyncContext* ac, uv_loop_t* loop) {
  if (ac->ev.data != nullptr) return REDIS_ERR;
  auto* e = new Events;
  if (uv_poll_init_socket(loop, &e->poll, ac->c.fd) != 0) {
    delete e;
    return REDIS_ERR;
  }
  e->poll.data = e;
  e->ac = ac;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = e;
  return REDIS_OK;
}

}  // namespace dp::upstream
