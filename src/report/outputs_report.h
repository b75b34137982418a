// The document of `gapless outputs --json` (docs/outputs.md), also /api/outputs.
#pragma once

#include <string>
#include <vector>

#include "output/output.h"

namespace gapless::report {

// *behind: whether a selected stream waits, was refused something, or has a problem.
std::string OutputsJson(const std::vector<output::OutputReport>& report, bool* behind);

}  // namespace gapless::report
