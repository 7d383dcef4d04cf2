#include "proxy/admin/admin_router.h"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace dp::admin;

namespace {

HttpRequest req(std::string method, std::string target, std::string auth = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.authorization = std::move(auth);
  r.keep_alive = true;
  return r;
}

std::string header(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return "";
}

struct Fixture {
  bool ready = true;
  bool checkpoint_ok = true;
  int checkpoint_calls = 0;
  AdminHandlers handlers{
      [] { return std::string("durable_proxy_ready 1\n"); },
      [this](std::string* reason) {
        if (!ready) *reason = "upstream 127.0.0.1:6379 not connected";
        return ready;
      },
      [] { return std::string("{\"version\":\"0.1.0\"}"); },
      [this](std::string* message) {
        ++checkpoint_calls;
        *message = checkpoint_ok ? "checkpoint started" : "a checkpoint is already running";
        return checkpoint_ok;
      },
  };
};

}  // namespace

TEST_CASE("each endpoint answers with its status code and content type") {
  Fixture f;
  HttpResponse m = route_admin_request(req("GET", "/metrics"), f.handlers, {});
  CHECK(m.status == 200);
  CHECK(m.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(m.body == "durable_proxy_ready 1\n");
  CHECK(route_admin_request(req("GET", "/healthz"), f.handlers, {}).status == 200);
  CHECK(route_admin_request(req("GET", "/readyz"), f.handlers, {}).status == 200);
  HttpResponse s = route_admin_request(req("GET", "/status?pretty"), f.handlers, {});
  CHECK(s.status == 200);
  CHECK(s.content_type == "application/json");
  CHECK(s.body == "{\"version\":\"0.1.0\"}\n");
  HttpResponse c = route_admin_request(req("POST", "/checkpoint"), f.handlers, {});
  CHECK(c.status == 202);
  CHECK(c.body == "{\"started\":true,\"message\":\"checkpoint started\"}\n");
}

TEST_CASE("readyz is 503 with the handler's reason when not ready") {
  Fixture f;
  f.ready = false;
  HttpResponse r = route_admin_request(req("GET", "/readyz"), f.handlers, {});
  CHECK(r.status == 503);
  CHECK(r.body == "not ready: upstream 127.0.0.1:6379 not connected\n");
}

TEST_CASE("a refused checkpoint is 409 with the message, JSON-escaped") {
  Fixture f;
  f.checkpoint_ok = false;
  f.handlers.checkpoint = [](std::string* m) {
    *m = "busy \"now\"\n";
    return false;
  };
  HttpResponse r = route_admin_request(req("POST", "/checkpoint"), f.handlers, {});
  CHECK(r.status == 409);
  CHECK(r.body == "{\"started\":false,\"message\":\"busy \\\"now\\\"\\u000a\"}\n");
}

TEST_CASE("unknown paths are 404 and wrong methods 405 with Allow") {
  Fixture f;
  CHECK(route_admin_request(req("GET", "/nope"), f.handlers, {}).status == 404);
  CHECK(route_admin_request(req("GET", "/metrics/"), f.handlers, {}).status == 404);
  HttpResponse r = route_admin_request(req("GET", "/checkpoint"), f.handlers, {});
  CHECK(r.status == 405);
  CHECK(header(r, "Allow") == "POST");
  CHECK(f.checkpoint_calls == 0);
  CHECK(route_admin_request(req("DELETE", "/metrics"), f.handlers, {}).status == 405);
}

TEST_CASE("with a token, protected endpoints need the right bearer token; probes do not by default") {
  Fixture f;
  RouteOptions opts{"s3cret", false};
  for (const char* path : {"/metrics", "/status"}) {
    CAPTURE(path);
    HttpResponse r = route_admin_request(req("GET", path), f.handlers, opts);
    CHECK(r.status == 401);
    CHECK(header(r, "WWW-Authenticate").rfind("Bearer", 0) == 0);
    CHECK(route_admin_request(req("GET", path, "Bearer wrong!"), f.handlers, opts).status == 401);
    CHECK(route_admin_request(req("GET", path, "Basic s3cret"), f.handlers, opts).status == 401);
    CHECK(route_admin_request(req("GET", path, "Bearer s3cret"), f.handlers, opts).status == 200);
    CHECK(route_admin_request(req("GET", path, "bearer   s3cret "), f.handlers, opts).status == 200);
  }
  CHECK(route_admin_request(req("POST", "/checkpoint", "Bearer s3cre"), f.handlers, opts).status == 401);
  CHECK(f.checkpoint_calls == 0);
  CHECK(route_admin_request(req("GET", "/healthz"), f.handlers, opts).status == 200);
  CHECK(route_admin_request(req("GET", "/readyz"), f.handlers, opts).status == 200);
  opts.token_protects_probes = true;
  CHECK(route_admin_request(req("GET", "/healthz"), f.handlers, opts).status == 401);
  CHECK(route_admin_request(req("GET", "/readyz", "Bearer s3cret"), f.handlers, opts).status == 200);
}

TEST_CASE("bearer token comparison rejects prefixes, extensions and empty tokens") {
  CHECK(bearer_token_matches("Bearer abc", "abc"));
  CHECK_FALSE(bearer_token_matches("Bearer ab", "abc"));
  CHECK_FALSE(bearer_token_matches("Bearer abcd", "abc"));
  CHECK_FALSE(bearer_token_matches("Bearer abd", "abc"));
  CHECK_FALSE(bearer_token_matches("Bearer", "abc"));
  CHECK_FALSE(bearer_token_matches("", "abc"));
  CHECK_FALSE(bearer_token_matches("Bearer ", ""));
}

TEST_CASE("a missing handler is 503 and a throwing handler is 500, never an exception") {
  AdminHandlers none;
  CHECK(route_admin_request(req("GET", "/metrics"), none, {}).status == 503);
  CHECK(route_admin_request(req("GET", "/readyz"), none, {}).status == 503);
  CHECK(route_admin_request(req("GET", "/healthz"), none, {}).status == 200);
  AdminHandlers throwing;
  throwing.status_json = []() -> std::string { throw std::runtime_error("log dir unreadable"); };
  HttpResponse r = route_admin_request(req("GET", "/status"), throwing, {});
  CHECK(r.status == 500);
  CHECK(r.body.find("log dir unreadable") != std::string::npos);
}
