#include "rtsync/testkit/migrated_cluster.hpp"

#include <fmt/format.h>

#include <functional>
#include <string>

#include "rtsync/server/migrate/migrations.hpp"
#include "rtsync/server/pg/bootstrap.hpp"

namespace rtsync::testkit {

TempClusterOptions with_migrations(TempClusterOptions base) {
  // The migration runner bootstraps first, so the bootstrap's own text is part of the key.
  std::string all = fmt::format("bootstrap {:x}\n", server::pg::bootstrap_fingerprint());
  for (const auto& m : server::migrate::embedded_migrations()) {
    all += fmt::format("{}\n{}\n{}\n{}\n", m.version, m.name, m.sql.size(), m.sql);
  }
  base.template_key = fmt::format("migrated-{:x}", std::hash<std::string>()(all));
  base.prepare = [](TempCluster& cluster) -> Result<void> {
    auto r = server::migrate::apply_migrations(cluster.conninfo(),
                                               server::migrate::embedded_migrations());
    if (!r) return r.error();
    return {};
  };
  return base;
}

}  // namespace rtsync::testkit
