#include "core/filter/registry.h"

#include "core/common/logger.h"

#include <dlfcn.h>
#include <fmt/format.h>

namespace sluice::filter {

Module::~Module() {
  if (handle_ != nullptr) {
    dlclose(handle_);
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
    return fmt::format("{}: built for C ABI {}.{}, newer than this sluice's ABI {}.{}", what,
                       m->abi_major, m->abi_minor, SLUICE_ABI_VERSION_MAJOR,
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

const FilterType* Registry::loadModuleType(const std::string& path, const std::string& type,
                                           std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  ModulePtr mod = modules_[path].lock();
  if (!mod) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = dlerror();
      error = fmt::format("cannot load module {}: {}", path, e ? e : "unknown error");
      return nullptr;
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
    mod->handle_ = h;
    mod->module_ = m;
    modules_[path] = mod;
  }
  const sluice_module_t* m = mod->module();
  for (size_t i = 0; i < m->filter_count; i++) {
    if (type == m->filters[i]->type) {
      auto t = std::make_unique<FilterType>();
      t->type = type;
      t->descriptor = m->filters[i];
      t->origin = path;
      t->module = mod;
      module_types_.push_back(std::move(t));
      return module_types_.back().get();
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
