// The console's pages (assets/), embedded at build time by embed_assets.cmake.
#pragma once

#include <cstddef>
#include <string_view>

namespace gapless::console {

struct Asset {
  const char* path;  // "/index.html"
  const char* content_type;
  const char* data;
  size_t size;
};

// Null when there is no such asset.
const Asset* FindAsset(std::string_view path);

}  // namespace gapless::console
