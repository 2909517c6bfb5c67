// Helpers for driving the `rtsync` binary in end-to-end tests: spawn with output in files, wait
// for exit, poll, find processes by command line, and a tmux session to type into and read.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace rtsync::e2e::cli {

using namespace std::chrono_literals;

inline const std::string kBinary = RTSYNC_E2E_BINARY;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A shell suffix for a command run in tmux (inside Tmux::run's double quotes): the command's exit
// status lands in `dir`/done, written whole (renamed into place), so a test that sees the file
// never reads it half-written. `\$?` reaches tmux's shell as `$?`; a bare `$?` would be expanded
// by the shell running tmux (always 0).
inline std::string exit_status_to(const std::string& dir) {
  return "; echo \\$? > " + dir + "/done.part && mv " + dir + "/done.part " + dir + "/done";
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/rtsync-e2e-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? std::string(d) : std::string();
}

inline void remove_tree(const std::string& dir) {
  if (dir.empty()) return;
  const std::string cmd = "rm -rf '" + dir + "'";
  (void)std::system(cmd.c_str());
}

// Runs `argv` with stdout and stderr in files under `dir`.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& dir) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (dir + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&fa, 2, (dir + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Exit status, or -1 after `timeout` (the child is then killed).
inline int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  for (int i = 0; i < timeout / 50ms; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(50ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

template <class Pred>
inline bool poll(Pred pred, std::chrono::milliseconds timeout,
                 std::chrono::milliseconds every = 100ms) {
  for (int i = 0; i <= timeout / every; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return false;
}

// PIDs whose command line mentions `needle` (a postgres of the demo's data folder, its watchdog).
inline std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmd = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

// The demo's "PostgreSQL 15 in <folder> (port N)" note.
inline std::string cluster_folder(const std::string& err) {
  std::smatch m;
  static const std::regex re(R"(PostgreSQL 15 in (\S+) \(port)");
  return std::regex_search(err, m, re) ? m[1].str() : std::string();
}

// A detached tmux server of its own (socket name), killed on destruction.
class Tmux {
 public:
  explicit Tmux(std::string socket) : socket_(std::move(socket)) {}
  ~Tmux() { run("kill-server"); }
  int run(const std::string& args) const {
    const std::string cmd = "tmux -u -f /dev/null -L " + socket_ + " " + args + " >/dev/null 2>&1";
    return std::system(cmd.c_str());
  }
  std::string capture() const {
    const std::string cmd = "tmux -u -f /dev/null -L " + socket_ + " capture-pane -p -t demo";
    std::string text;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      std::size_t n = 0;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        text.append(buf, n);
      pclose(p);
    }
    return text;
  }

 private:
  std::string socket_;
};

}  // namespace rtsync::e2e::cli
