#include "proxy/admin/admin_router.h"

#include <exception>
#include <strings.h>

#include "proxy/base/json.h"

namespace dp::admin {
namespace {

enum class Endpoint { metrics, status, checkpoint, healthz, readyz };

struct Route {
  std::string_view path;
  std::string_view method;
  Endpoint endpoint;
  bool probe;  // exempt from the token unless token_protects_probes
};

constexpr Route kRoutes[] = {
    {"/metrics", "GET", Endpoint::metrics, false},
    {"/status", "GET", Endpoint::status, false},
    {"/checkpoint", "POST", Endpoint::checkpoint, false},
    {"/healthz", "GET", Endpoint::healthz, true},
    {"/readyz", "GET", Endpoint::readyz, true},
};

HttpResponse unavailable(std::string_view path) {
  return text_response(503, std::string(path) + ": not available (no handler)");
}

HttpResponse run(const Route& route, const AdminHandlers& h) {
  switch (route.endpoint) {
    case Endpoint::healthz: return text_response(200, "ok");
    case Endpoint::metrics: {
      if (!h.metrics) return unavailable(route.path);
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = h.metrics();
      return r;
    }
    case Endpoint::readyz: {
      if (!h.ready) return unavailable(route.path);
      std::string reason;
      if (h.ready(&reason)) return text_response(200, "ready");
      return text_response(503, "not ready: " + (reason.empty() ? std::string("no reason given") : reason));
    }
    case Endpoint::status: {
      if (!h.status_json) return unavailable(route.path);
      HttpResponse r;
      r.content_type = "application/json";
      r.body = h.status_json();
      r.body += '\n';
      return r;
    }
    case Endpoint::checkpoint: {
      if (!h.checkpoint) return unavailable(route.path);
      std::string message;
      const CheckpointAnswer answer = h.checkpoint(&message);
      const bool started = answer.kind == CheckpointAnswer::started;
      HttpResponse r;
      r.status = started ? 202 : answer.kind == CheckpointAnswer::not_ready ? 503 : 409;
      r.content_type = "application/json";
      r.body = std::string("{\"started\":") + (started ? "true" : "false") +
               ",\"message\":" + json_quoted(message) + "}\n";
      return r;
    }
  }
  return text_response(500, "unhandled endpoint");
}

}  // namespace

bool bearer_token_matches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() < scheme.size() ||
      strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
    return false;
  std::string_view given = authorization.substr(scheme.size());
  while (!given.empty() && (given.front() == ' ' || given.front() == '\t')) given.remove_prefix(1);
  while (!given.empty() && (given.back() == ' ' || given.back() == '\t')) given.remove_suffix(1);
  // Touch every byte of the expected token whatever the given one holds, so
  // the time taken does not reveal the length of a matching prefix.
  unsigned diff = given.size() != token.size();
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(token[i]);
  }
  return diff == 0 && !token.empty();
}

HttpResponse route_admin_request(const HttpRequest& request, const AdminHandlers& handlers,
                                 const RouteOptions& options) {
  const std::string_view path = request.path();
  const Route* route = nullptr;
  for (const Route& r : kRoutes)
    if (r.path == path) route = &r;
  if (!route) return text_response(404, "no such endpoint: " + std::string(path.substr(0, 200)));

  if (!options.token.empty() && (!route->probe || options.token_protects_probes) &&
      !bearer_token_matches(request.authorization, options.token)) {
    HttpResponse r = text_response(401, std::string(path) + ": missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"durable-proxy\"");
    return r;
  }
  if (request.method != route->method) {
    HttpResponse r = text_response(405, std::string(path) + ": method " + request.method.substr(0, 20) +
                                            " not allowed, use " + std::string(route->method));
    r.headers.emplace_back("Allow", std::string(route->method));
    return r;
  }
  try {
    return run(*route, handlers);
  } catch (const std::exception& e) {
    return text_response(500, std::string(path) + ": handler failed: " + e.what());
  } catch (...) {
    return text_response(500, std::string(path) + ": handler failed");
  }
}

}  // namespace dp::admin
