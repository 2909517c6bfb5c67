// Running a Node conformance script from a test: a shell command with its combined output, and
// shell quoting for the environment it is given. Shared by the realtime-js and supabase-js suites.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace rtsync::conformance {

struct Run {
  int status = -1;  // the exit status, -1 when it could not start or was killed by a signal
  std::string output;
};

// Runs `command` through the shell with stderr folded into stdout.
inline Run run_command(const std::string& command) {
  Run r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// 'single-quoted' for sh, embedded quotes included.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace rtsync::conformance
