#include "faults.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <stdexcept>
#include <thread>

#include "test_db.h"
#include "test_util.h"

namespace poolscope::testing {
namespace {

std::string admin_connect_string(const PgServer& s) {
  return "host=" + s.host + " port=" + s.port + " user=" + s.user + " password='" + s.password +
         "' dbname=postgres connect_timeout=10";
}

int bound_socket(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

PgFaults::PgFaults() {
  std::map<std::string, std::string> values = read_env_file("POOLSCOPE_PG_ENV", "postgres");
  control_ = values["control"];
  dir_ = values["dir"];
  if (control_.empty() || dir_.empty()) {
    throw std::runtime_error("$POOLSCOPE_PG_ENV names no fixture script to control the server");
  }
}

void PgFaults::run(const std::string& verb) const {
  const std::string command = "bash '" + control_ + "' " + verb + " '" + dir_ + "'";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

void PgFaults::pause() const { run("pause"); }
void PgFaults::resume() const { run("resume"); }

std::chrono::milliseconds PgFaults::restart(const std::string& mode) const {
  const auto start = std::chrono::steady_clock::now();
  const std::string command = "bash '" + control_ + "' restart '" + dir_ + "' " + mode;
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  return elapsed_since(start);
}

int PgFaults::terminate_backends(const std::string& prefix) const {
  soci::session admin(soci::postgresql, admin_connect_string(pg_server()));
  int terminated = 0;
  const std::string pattern = prefix + "%";
  admin << "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
           "WHERE application_name LIKE :p AND pid <> pg_backend_pid()",
      soci::use(pattern), soci::into(terminated);
  for (int i = 0; i < 500; ++i) {
    int alive = 0;
    admin << "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE :p",
        soci::use(pattern), soci::into(alive);
    if (alive == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return terminated;
}

BlackHoleListener::BlackHoleListener() {
  fd_ = bound_socket(&port_);
  if (::listen(fd_, 128) != 0) {
    ::close(fd_);
    throw std::runtime_error("listen() failed");
  }
}

BlackHoleListener::~BlackHoleListener() { ::close(fd_); }

int refused_port() {
  int port = 0;
  const int fd = bound_socket(&port);
  ::close(fd);  // bound once, never listened on: a connect is refused
  return port;
}

}  // namespace poolscope::testing
