// Maps one parsed admin request to a response: the endpoint table, bearer
// token check and method check.  Pure: no I/O; the handlers run inline.
//
//   GET  /metrics     Prometheus text           (token)
//   GET  /status      JSON                      (token)
//   POST /checkpoint  202 started / 409 refused / 503 not ready (token)
//   GET  /healthz     200 while the process runs
//   GET  /readyz      200 ready / 503 + reason
//
// Checks in order: unknown path 404, bad token 401, wrong method 405.  The
// probes skip the token unless `token_protects_probes` (a Kubernetes httpGet
// probe cannot read a secret, and they reveal only ready or not and why).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "proxy/admin/http_request_parser.h"
#include "proxy/admin/http_response.h"

namespace dp::admin {

// What POST /checkpoint answers: 202 started, 409 refused (one is already
// running), 503 not ready (the proxy cannot take one now).  A handler may
// return a bool (true = started, false = refused).
struct CheckpointAnswer {
  enum Kind { refused, started, not_ready };
  Kind kind;
  CheckpointAnswer(bool started) : kind(started ? Kind::started : Kind::refused) {}  // NOLINT: implicit
  CheckpointAnswer(Kind k) : kind(k) {}                                               // NOLINT: implicit
};

// Called on the loop thread while a request is answered; keep them quick.
// An empty function answers 503 "not available".  An exception thrown by one
// is caught and answered 500.
struct AdminHandlers {
  std::function<std::string()> metrics;                  // body of /metrics
  std::function<bool(std::string* reason)> ready;        // /readyz: false + reason = 503
  std::function<std::string()> status_json;              // body of /status
  std::function<CheckpointAnswer(std::string* message)> checkpoint;  // POST /checkpoint
};

struct RouteOptions {
  std::string_view token;  // "" = no authentication
  bool token_protects_probes = false;
};

HttpResponse route_admin_request(const HttpRequest& request, const AdminHandlers& handlers,
                                 const RouteOptions& options);

// "Bearer <token>" (scheme case-insensitive), compared in time independent
// of where the token differs.
bool bearer_token_matches(std::string_view authorization, std::string_view token);

}  // namespace dp::admin
