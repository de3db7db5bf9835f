#pragma once

// Every filter type this process knows: the built-ins linked into the binary and the types of
// modules loaded with dlopen. Built-ins and modules go through the same entry function and
// descriptors: one code path for both.

#include "core/filter/builtin.h"
#include "sluice/filter.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::filter {

// A loaded shared object. Stays mapped while any filter config made from it is alive.
class Module {
public:
  ~Module();
  const std::string& path() const { return path_; }
  const sluice_module_t* module() const { return module_; }

  // What identifies the file that was loaded: a different file at the same path (a new
  // build renamed into place) is loaded again on the next config load.
  struct FileId {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
    }
  };

private:
  friend class Registry;
  std::string path_;
  FileId id_;
  void* handle_ = nullptr;
  const sluice_module_t* module_ = nullptr;
};
using ModulePtr = std::shared_ptr<Module>;

struct FilterType {
  std::string type;
  const sluice_filter_descriptor_t* descriptor = nullptr;
  std::string origin; // "built-in" or the module path
  ModulePtr module;   // null for built-ins
};

// Validates a descriptor table; returns an empty string or what is wrong.
std::string checkModule(const sluice_module_t* m, const std::string& what);

class Registry {
public:
  static Registry& global();

  // Registers the filters linked into this binary (once, at start).
  void addBuiltins(const BuiltinModule* modules, size_t count);
  // dlopen()s a module (RTLD_NOW | RTLD_LOCAL) and returns its filter type, or null and an
  // error naming the file, both versions and what is wrong. A file is loaded once while
  // anything uses it; a different file at the same path is loaded beside the old one, which
  // stays mapped until the last filter config made from it is destroyed. The returned type
  // holds the module.
  std::shared_ptr<const FilterType> loadModuleType(const std::string& path, const std::string& type,
                                                   std::string& error);
  // How many module files are mapped now (for tests).
  size_t loadedModules() const;
  const FilterType* findBuiltin(const std::string& type) const;
  std::vector<const FilterType*> builtins() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<FilterType>> builtins_;
  std::map<std::string, std::weak_ptr<Module>> modules_; // by path: the newest file loaded
  std::vector<std::weak_ptr<Module>> all_modules_;
  uint64_t load_count_ = 0;
};

// The host function table handed to every module.
const sluice_host_t* hostTable();

} // namespace sluice::filter
