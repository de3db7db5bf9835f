#include "core/filter/registry.h"

#include "core/common/logger.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::filter {

Module::~Module() {
  if (handle_ != nullptr) {
    dlclose(handle_);
    SLUICE_LOG(Info, "filter", "unloaded module {} (no config uses it any more)", path_);
  }
}

Registry& Registry::global() {
  static Registry r;
  return r;
}

std::string checkModule(const sluice_module_t* m, const std::string& what) {
  if (m == nullptr) {
    return fmt::format("{}: the entry function returned no module (it refused to load)", what);
  }
  if (m->size < offsetof(sluice_module_t, filter_count) + sizeof(size_t)) {
    return fmt::format("{}: module descriptor is too small ({} bytes)", what, m->size);
  }
  if (m->abi_major != SLUICE_ABI_VERSION_MAJOR) {
    return fmt::format(
        "{}: built for C ABI {}.{}, this sluice has ABI {}.{} (major versions differ)", what,
        m->abi_major, m->abi_minor, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
  }
  if (m->abi_minor > SLUICE_ABI_VERSION_MINOR) {
    return fmt::format("{}: requires C ABI {}.{} (SLUICE_MODULE_REQUIRES_MINOR), newer than this "
                       "sluice's ABI {}.{}; upgrade sluice or build the module for an older minor",
                       what, m->abi_major, m->abi_minor, SLUICE_ABI_VERSION_MAJOR,
                       SLUICE_ABI_VERSION_MINOR);
  }
  for (size_t i = 0; i < m->filter_count; i++) {
    const sluice_filter_descriptor_t* d = m->filters[i];
    if (d == nullptr || d->type == nullptr) {
      return fmt::format("{}: filter descriptor {} has no type name", what, i);
    }
    if (d->size < offsetof(sluice_filter_descriptor_t, sluice_on_stream_destroy)) {
      return fmt::format("{}: filter \"{}\" descriptor is too small", what, d->type);
    }
    if (d->sluice_on_config_new == nullptr) {
      return fmt::format("{}: filter \"{}\" lacks the required hook sluice_on_config_new", what,
                         d->type);
    }
    if (d->sluice_on_stream_new == nullptr) {
      return fmt::format("{}: filter \"{}\" lacks the required hook sluice_on_stream_new", what,
                         d->type);
    }
  }
  return {};
}

void Registry::addBuiltins(const BuiltinModule* modules, size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < count; i++) {
    const sluice_module_t* m =
        modules[i].init(hostTable(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    std::string err = checkModule(m, fmt::format("built-in filter {}", modules[i].name));
    if (!err.empty()) {
      SLUICE_LOG(Error, "filter", "{}", err);
      continue;
    }
    for (size_t j = 0; j < m->filter_count; j++) {
      auto t = std::make_unique<FilterType>();
      t->type = m->filters[j]->type;
      t->descriptor = m->filters[j];
      t->origin = "built-in";
      builtins_[t->type] = std::move(t);
    }
  }
}

const FilterType* Registry::findBuiltin(const std::string& type) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = builtins_.find(type);
  return it == builtins_.end() ? nullptr : it->second.get();
}

std::vector<const FilterType*> Registry::builtins() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<const FilterType*> out;
  for (const auto& [n, t] : builtins_) {
    out.push_back(t.get());
  }
  return out;
}

namespace {

bool fileId(const std::string& path, Module::FileId& id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return false;
  }
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

// dlopen() returns the already-loaded object for a path it has seen, even when the file there
// is new. A new file at a known path is opened through a fresh symlink, so the loader maps it.
void* openFresh(const std::string& path, uint64_t n, std::string& error) {
  static std::string dir;
  if (dir.empty()) {
    std::string tmpl = "/tmp/sluice-modules-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      error = fmt::format("cannot create a folder for reloading modules: {}", strerror(errno));
      return nullptr;
    }
    dir = tmpl;
  }
  std::string base = path.substr(path.find_last_of('/') + 1);
  std::string link = fmt::format("{}/{}-{}", dir, n, base);
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr || ::symlink(real, link.c_str()) != 0) {
    error = fmt::format("cannot load module {}: {}", path, strerror(errno));
    return nullptr;
  }
  void* h = dlopen(link.c_str(), RTLD_NOW | RTLD_LOCAL);
  ::unlink(link.c_str());
  if (h == nullptr) {
    const char* e = dlerror();
    error = fmt::format("cannot load module {}: {}", path, e ? e : "unknown error");
  }
  return h;
}

} // namespace

size_t Registry::loadedModules() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& w : all_modules_) {
    n += w.expired() ? 0 : 1;
  }
  return n;
}

std::shared_ptr<const FilterType>
Registry::loadModuleType(const std::string& path, const std::string& type, std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  Module::FileId id;
  if (!fileId(path, id)) {
    error = fmt::format("cannot load module {}: {}", path, strerror(errno));
    return nullptr;
  }
  ModulePtr mod = modules_[path].lock();
  if (mod && !(mod->id_ == id)) {
    mod.reset(); // a new file at that path
  }
  if (!mod) {
    bool seen = std::any_of(all_modules_.begin(), all_modules_.end(), [&](const auto& w) {
      ModulePtr m = w.lock();
      return m && m->path_ == path;
    });
    void* h = nullptr;
    if (seen) {
      h = openFresh(path, ++load_count_, error);
      if (h == nullptr) {
        return nullptr;
      }
    } else {
      h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) {
        const char* e = dlerror();
        error = fmt::format("cannot load module {}: {}", path, e ? e : "unknown error");
        return nullptr;
      }
    }
    auto entry = reinterpret_cast<sluice_module_init_fn>(dlsym(h, SLUICE_MODULE_ENTRY_SYMBOL));
    if (entry == nullptr) {
      dlclose(h);
      error = fmt::format("module {} does not export the entry symbol {}", path,
                          SLUICE_MODULE_ENTRY_SYMBOL);
      return nullptr;
    }
    const sluice_module_t* m =
        entry(hostTable(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    std::string err = checkModule(m, fmt::format("module {}", path));
    if (!err.empty()) {
      dlclose(h);
      error = err;
      return nullptr;
    }
    mod = std::make_shared<Module>();
    mod->path_ = path;
    mod->id_ = id;
    mod->handle_ = h;
    mod->module_ = m;
    modules_[path] = mod;
    all_modules_.erase(std::remove_if(all_modules_.begin(), all_modules_.end(),
                                      [](const auto& w) { return w.expired(); }),
                       all_modules_.end());
    all_modules_.push_back(mod);
    SLUICE_LOG(Info, "filter", "loaded module {} ({}, C ABI {}.{})", path,
               m->name != nullptr ? m->name : "unnamed", m->abi_major, m->abi_minor);
  }
  const sluice_module_t* m = mod->module();
  for (size_t i = 0; i < m->filter_count; i++) {
    if (type == m->filters[i]->type) {
      auto t = std::make_shared<FilterType>();
      t->type = type;
      t->descriptor = m->filters[i];
      t->origin = path;
      t->module = mod;
      return t;
    }
  }
  std::string have;
  for (size_t i = 0; i < m->filter_count; i++) {
    have += (i ? ", " : "") + std::string(m->filters[i]->type);
  }
  error = fmt::format("module {} has no filter type \"{}\" (it has: {})", path, type, have);
  return nullptr;
}

} // namespace sluice::filter
