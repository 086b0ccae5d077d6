#include <atoll/http/exchange.hpp>
#include <atoll/web/router.hpp>

#include <atoll/runtime/string_map.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <unordered_map>

namespace atl::web {

namespace {

struct Endpoint {
  App handler;
  std::string pattern;  // as written, for conflict messages
};

struct Node {
  runtime::StringMap<std::unique_ptr<Node>> statics;
  struct Param {
    std::string prefix, name, suffix;
    std::string first_pattern;  // a route that introduced it
    std::unique_ptr<Node> node;
  };
  std::vector<Param> params;  // most specific (longest affixes) first
  std::string glob_name;
  std::string glob_pattern;
  std::unique_ptr<Node> glob;
  std::map<std::string, Endpoint, std::less<>> methods;
  std::unique_ptr<Endpoint> mounted;

  std::unique_ptr<Node> clone() const {
    auto n = std::make_unique<Node>();
    for (const auto& [k, v] : statics) n->statics.emplace(k, v->clone());
    for (const auto& p : params)
      n->params.push_back({p.prefix, p.name, p.suffix, p.first_pattern, p.node->clone()});
    n->glob_name = glob_name;
    n->glob_pattern = glob_pattern;
    if (glob) n->glob = glob->clone();
    n->methods = methods;
    if (mounted) n->mounted = std::make_unique<Endpoint>(*mounted);
    return n;
  }
};

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> segs;
  if (path.empty() || path == "/") return segs;
  if (path.front() == '/') path.remove_prefix(1);
  std::size_t pos = 0;
  for (;;) {
    std::size_t slash = path.find('/', pos);
    segs.push_back(
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return segs;
}

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace

struct Router::Tree {
  std::unique_ptr<Node> root = std::make_unique<Node>();
  std::map<std::string, Router, std::less<>> exact_hosts;
  std::vector<std::pair<std::string, Router>> wildcard_hosts;  // suffix ".example.com"
  App fallback;

  std::shared_ptr<Tree> clone() const {
    auto t = std::make_shared<Tree>();
    t->root = root->clone();
    t->exact_hosts = exact_hosts;
    t->wildcard_hosts = wildcard_hosts;
    t->fallback = fallback;
    return t;
  }
};

Router::Router() : tree_(std::make_shared<Tree>()) {}
Router::~Router() = default;
Router::Router(const Router&) = default;
Router& Router::operator=(const Router&) = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

void Router::own() {
  if (tree_.use_count() > 1) tree_ = tree_->clone();
}

namespace {

// Finds or creates the node for `pattern`, checking parameter-name conflicts.
Node& node_for(Node& root, std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route '" + std::string(pattern) + "' must start with '/'");
  Node* n = &root;
  auto segs = split(pattern);
  for (std::size_t i = 0; i < segs.size(); ++i) {
    std::string_view seg = segs[i];
    if (!seg.empty() && seg.front() == '*') {
      if (i + 1 != segs.size())
        throw std::invalid_argument("route '" + std::string(pattern) + "': a glob (*" +
                                    std::string(seg.substr(1)) + ") must be the last segment");
      std::string name(seg.substr(1));
      if (!valid_name(name))
        throw std::invalid_argument("route '" + std::string(pattern) +
                                    "': glob needs a name (*rest)");
      if (n->glob && n->glob_name != name)
        throw std::invalid_argument("route '" + std::string(pattern) + "' conflicts with '" +
                                    n->glob_pattern + "': the same glob is named *" + n->glob_name +
                                    " there");
      if (!n->glob) {
        n->glob = std::make_unique<Node>();
        n->glob_name = name;
        n->glob_pattern = std::string(pattern);
      }
      return *n->glob;
    }
    auto colon = seg.find(':');
    if (colon == std::string_view::npos) {
      auto it = n->statics.find(seg);
      if (it == n->statics.end())
        it = n->statics.emplace(std::string(seg), std::make_unique<Node>()).first;
      n = it->second.get();
      continue;
    }
    // A parameter, maybe with a static prefix and suffix: "v:version", ":name.json".
    std::string prefix(seg.substr(0, colon));
    std::string_view rest = seg.substr(colon + 1);
    std::size_t end = 0;
    while (end < rest.size() &&
           (std::isalnum(static_cast<unsigned char>(rest[end])) || rest[end] == '_'))
      ++end;
    std::string name(rest.substr(0, end)), suffix(rest.substr(end));
    if (!valid_name(name))
      throw std::invalid_argument("route '" + std::string(pattern) +
                                  "': ':' must be followed by a parameter name");
    Node::Param* found = nullptr;
    for (auto& p : n->params) {
      if (p.prefix == prefix && p.suffix == suffix) {
        if (p.name != name)
          throw std::invalid_argument("route '" + std::string(pattern) + "' conflicts with '" +
                                      p.first_pattern +
                                      "': the same parameter is named :" + p.name + " there");
        found = &p;
      }
    }
    if (!found) {
      n->params.push_back({prefix, name, suffix, std::string(pattern), std::make_unique<Node>()});
      std::stable_sort(
          n->params.begin(), n->params.end(), [](const Node::Param& a, const Node::Param& b) {
            return a.prefix.size() + a.suffix.size() > b.prefix.size() + b.suffix.size();
          });
      for (auto& p : n->params)
        if (p.prefix == prefix && p.suffix == suffix) found = &p;
    }
    n = found->node.get();
  }
  return *n;
}

void add_route(Node& root, std::string_view method, std::string_view pattern, App handler) {
  Node& n = node_for(root, pattern);
  auto it = n.methods.find(method);
  if (it != n.methods.end())
    throw std::invalid_argument("route " + std::string(method) + " " + std::string(pattern) +
                                " conflicts with " + std::string(method) + " " +
                                it->second.pattern + ": both match the same paths");
  n.methods.emplace(std::string(method), Endpoint{std::move(handler), std::string(pattern)});
}

// Adds every route of `from` (rooted at `path`) under `prefix`.
void copy_routes(Node& root, std::string_view prefix, const Node& from,
                 const std::string& path_so_far) {
  for (const auto& [method, ep] : from.methods) {
    std::string full = std::string(prefix) + (ep.pattern == "/" ? "" : ep.pattern);
    if (full.empty()) full = "/";
    add_route(root, method, full, ep.handler);
  }
  if (from.mounted) {
    std::string full =
        std::string(prefix) + (from.mounted->pattern == "/" ? "" : from.mounted->pattern);
    Node& n = node_for(root, full.empty() ? "/" : full);
    if (n.mounted)
      throw std::invalid_argument("mount at '" + full + "' conflicts with mount '" +
                                  n.mounted->pattern + "'");
    n.mounted = std::make_unique<Endpoint>(Endpoint{from.mounted->handler, full});
  }
  for (const auto& [k, v] : from.statics) copy_routes(root, prefix, *v, path_so_far + "/" + k);
  for (const auto& p : from.params) copy_routes(root, prefix, *p.node, path_so_far);
  if (from.glob) copy_routes(root, prefix, *from.glob, path_so_far);
}

struct Matcher {
  std::string_view method;
  std::string_view path;
  std::vector<std::pair<std::string_view, std::string>>& params;
  const Node* mismatch = nullptr;
  const Endpoint* mount = nullptr;
  std::size_t mount_offset = 0;
  std::vector<std::pair<std::string_view, std::string>> mount_params;  // params up to the mount

  const Endpoint* at_node(const Node& n) {
    if (n.methods.empty()) return nullptr;
    auto it = n.methods.find(method);
    if (it == n.methods.end() && method == "HEAD") it = n.methods.find("GET");
    if (it != n.methods.end()) return &it->second;
    if (!mismatch) mismatch = &n;
    return nullptr;
  }

  // `pos` is the index in `path` where the next segment starts (after '/').
  const Endpoint* walk(const Node& n, std::size_t pos, bool at_end) {
    if (n.mounted) {  // the deepest mount on the way wins
      mount = n.mounted.get();
      mount_offset = pos == 0 ? 0 : pos - 1;
      mount_params = params;
    }
    if (at_end) {
      if (auto* e = at_node(n)) return e;
      return nullptr;
    }
    std::size_t slash = path.find('/', pos);
    std::string_view seg =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    std::size_t next = slash == std::string_view::npos ? path.size() : slash + 1;
    bool last = slash == std::string_view::npos;
    if (auto it = n.statics.find(seg); it != n.statics.end())
      if (auto* e = walk(*it->second, next, last)) return e;
    for (const auto& p : n.params) {
      if (seg.size() <= p.prefix.size() + p.suffix.size() || !seg.starts_with(p.prefix) ||
          !seg.ends_with(p.suffix))
        continue;
      params.emplace_back(
          p.name,
          std::string(seg.substr(p.prefix.size(), seg.size() - p.prefix.size() - p.suffix.size())));
      if (auto* e = walk(*p.node, next, last)) return e;
      params.pop_back();
    }
    if (n.glob) {
      params.emplace_back(n.glob_name, std::string(path.substr(pos)));
      if (auto* e = at_node(*n.glob)) return e;
      params.pop_back();
    }
    return nullptr;
  }
};

}  // namespace

Router& Router::route(std::string_view method, std::string_view pattern, App handler) {
  own();
  add_route(*tree_->root, method, pattern, std::move(handler));
  return *this;
}

Router& Router::mount(std::string_view prefix, const Router& router) {
  own();
  std::string p(prefix);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == "/") p.clear();
  copy_routes(*tree_->root, p, *router.tree_->root, "");
  return *this;
}

Router& Router::mount(std::string_view prefix, App app) {
  own();
  std::string p(prefix);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  Node& n = node_for(*tree_->root, p.empty() ? "/" : p);
  if (n.mounted)
    throw std::invalid_argument("mount at '" + p + "' conflicts with mount '" + n.mounted->pattern +
                                "'");
  n.mounted = std::make_unique<Endpoint>(Endpoint{std::move(app), p.empty() ? "/" : p});
  return *this;
}

Router& Router::host(std::string_view pattern, const Router& router) {
  own();
  std::string p(pattern);
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p.starts_with("*.")) {
    for (auto& [suffix, _] : tree_->wildcard_hosts)
      if (suffix == p.substr(1))
        throw std::invalid_argument("host pattern '" + p + "' is given twice");
    tree_->wildcard_hosts.emplace_back(p.substr(1), router);
    std::stable_sort(tree_->wildcard_hosts.begin(), tree_->wildcard_hosts.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  } else {
    if (!tree_->exact_hosts.emplace(p, router).second)
      throw std::invalid_argument("host '" + p + "' is given twice");
  }
  return *this;
}

Router& Router::fallback(App app) {
  own();
  tree_->fallback = std::move(app);
  return *this;
}

Router::Match Router::match(std::string_view method, std::string_view host, std::string_view path,
                            std::vector<std::pair<std::string_view, std::string>>& params) const {
  const Tree* t = tree_.get();
  if (!host.empty() && (!t->exact_hosts.empty() || !t->wildcard_hosts.empty())) {
    std::string h(host);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
    if (auto it = t->exact_hosts.find(h); it != t->exact_hosts.end())
      return it->second.match(method, {}, path, params);
    for (const auto& [suffix, r] : t->wildcard_hosts)
      if (h.size() > suffix.size() && h.ends_with(suffix)) return r.match(method, {}, path, params);
  }
  Match m;
  std::size_t base = params.size();
  Matcher walker{method, path, params};
  std::string_view p = path;
  bool root_only = p.empty() || p == "/";
  const Endpoint* e = walker.walk(*t->root, 1, root_only);
  if (e) {
    m.handler = &e->handler;
    return m;
  }
  params.resize(base);
  if (walker.mount) {
    params = walker.mount_params;
    // The longest mount on the way: hand it the rest of the path.
    m.handler = &walker.mount->handler;
    m.path_offset = walker.mount_offset;
    return m;
  }
  if (walker.mismatch) {
    m.method_mismatch = true;
    bool get = false;
    for (const auto& [meth, _] : walker.mismatch->methods) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += meth;
      get = get || meth == "GET";
    }
    if (get && !walker.mismatch->methods.count("HEAD")) m.allow += ", HEAD";
    if (!walker.mismatch->methods.count("OPTIONS")) m.allow += ", OPTIONS";
  }
  if (!m.handler && t->fallback) m.handler = &t->fallback;
  return m;
}

Router::operator App() const {
  Router snapshot = *this;
  return [snapshot](Conn& c) -> Task<> {
    std::string_view path = std::string_view(c.path()).substr(c.path_offset);
    std::size_t before = c.path_offset;
    auto m = snapshot.match(c.method(), c.host(), path, c.params);
    if (m.method_mismatch && !m.handler) {
      c.set_header("Allow", m.allow);
      if (c.method() == "OPTIONS") {
        co_await c.send(204, "");
      } else {
        co_await http::send_error(c, 405);
      }
      co_return;
    }
    if (!m.handler) {
      co_await http::send_error(c, 404);
      co_return;
    }
    c.path_offset = before + m.path_offset;
    co_await (*m.handler)(c);
  };
}

}  // namespace atl::web
