// POST /checkpoint: the three answers of the checkpoint handler.
#include <doctest/doctest.h>

#include "proxy/admin/admin_router.h"

using namespace dp::admin;

namespace {

HttpResponse post_checkpoint(CheckpointAnswer answer, const std::string& message) {
  AdminHandlers h;
  h.checkpoint = [answer, message](std::string* m) {
    *m = message;
    return answer;
  };
  HttpRequest r;
  r.method = "POST";
  r.target = "/checkpoint";
  r.keep_alive = true;
  return route_admin_request(r, h, {});
}

}  // namespace

TEST_CASE("a checkpoint request answers 202 started, 409 busy, 503 not ready, each with its message") {
  HttpResponse started = post_checkpoint(CheckpointAnswer::started, "checkpoint started");
  CHECK(started.status == 202);
  CHECK(started.body == "{\"started\":true,\"message\":\"checkpoint started\"}\n");
  HttpResponse busy = post_checkpoint(CheckpointAnswer::refused, "a checkpoint is already running");
  CHECK(busy.status == 409);
  CHECK(busy.body == "{\"started\":false,\"message\":\"a checkpoint is already running\"}\n");
  HttpResponse unready = post_checkpoint(CheckpointAnswer::not_ready, "not ready: restoring");
  CHECK(unready.status == 503);
  CHECK(unready.content_type == "application/json");
  CHECK(unready.body == "{\"started\":false,\"message\":\"not ready: restoring\"}\n");
}

TEST_CASE("a handler returning bool still means started or refused") {
  CHECK(post_checkpoint(true, "ok").status == 202);
  CHECK(post_checkpoint(false, "busy").status == 409);
}
