#include "server_process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

namespace rtsync::chaos {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr std::string_view kListening = "listening on http://127.0.0.1:";

}  // namespace

ServerProcess::ServerProcess(std::string binary, std::vector<std::string> args,
                             std::string log_file)
    : binary_(std::move(binary)), args_(std::move(args)), log_file_(std::move(log_file)) {}

ServerProcess::~ServerProcess() {
  kill();
}

Result<void> ServerProcess::start(std::chrono::seconds timeout) {
  if (running()) return {};
  // Restarts append to the same log: remember where this start's output begins.
  const std::size_t offset = read_file(log_file_).size();
  std::vector<std::string> argv = {binary_, "server"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  argv.push_back("--listen");
  argv.push_back("127.0.0.1:0");
  std::vector<char*> cargs;
  for (auto& a : argv)
    cargs.push_back(a.data());
  cargs.push_back(nullptr);
  const int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(Errc::io, "cannot open " + log_file_);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return make_error(Errc::io, "fork failed");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(cargs[0], cargs.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = read_file(log_file_);
    const auto at = text.find(kListening, offset);
    if (at != std::string::npos) {
      port_ = static_cast<std::uint16_t>(std::stoi(text.substr(at + kListening.size())));
      return {};
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return make_error(Errc::io, "rtsync server exited at start: " + log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill();
  return make_error(Errc::timeout, "rtsync server did not start: " + log_tail());
}

void ServerProcess::signal_and_wait(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
}

void ServerProcess::kill() {
  signal_and_wait(SIGKILL);
}

void ServerProcess::stop() {
  signal_and_wait(SIGTERM);
}

std::string ServerProcess::log_tail(std::size_t max_bytes) const {
  const std::string text = read_file(log_file_);
  return text.size() <= max_bytes ? text : text.substr(text.size() - max_bytes);
}

}  // namespace rtsync::chaos
