// A throwaway certificate authority for TLS tests, made with the openssl CLI in a temporary
// folder (removed with the object):
//   ca.pem                    the CA certificate (what a client is told to trust)
//   server.pem, server.key    signed by it for localhost and 127.0.0.1
//   other.pem, other.key      signed by it for other.example only (a name tests never dial)
//   openssl.log               what openssl said, for a failed ok()
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace rtsync::testing {

class TestCa {
 public:
  TestCa() {
    char tmpl[] = "/tmp/rtsync-test-ca-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    const std::string script =
        "cd '" + dir_.string() +
        "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj '/CN=rtsync test CA' "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
        "&& printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
        "keyUsage=digitalSignature\\nextendedKeyUsage=serverAuth\\n' > server.cnf "
        "&& printf 'subjectAltName=DNS:other.example\\n' > other.cnf "
        "&& for n in server other; do "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key "
        "-out $n.csr -subj /CN=$n || exit 1; "
        "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem "
        "-days 2 -extfile $n.cnf || exit 1; done";
    ok_ = std::system((script + " >openssl.log 2>&1").c_str()) == 0;
  }
  ~TestCa() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  bool ok() const { return ok_; }
  std::string file(std::string_view name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
};

}  // namespace rtsync::testing
