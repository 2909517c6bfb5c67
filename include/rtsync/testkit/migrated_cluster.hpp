// Options for a TempCluster that starts with the demo schema (`rtsync migrate`, db/*.sql) applied
// to its `postgres` database. The first such cluster migrates and leaves a prepared template
// beside the initdb one (see temp_cluster.hpp); later clusters start from a copy of it, already
// migrated, so a test or the demo pays for the migration once per schema instead of once per
// cluster. The template is named after a hash of every embedded migration's version, name and
// text: editing db/*.sql makes a new one.
//
// Thread safety: a pure function; the cluster it configures is driven by one thread.
#pragma once

#include "rtsync/testkit/temp_cluster.hpp"

namespace rtsync::testkit {

// `base` with `prepare` applying the embedded migrations (errors as
// server::migrate::apply_migrations) and the matching `template_key`. A `prepare` already in
// `base` is replaced.
TempClusterOptions with_migrations(TempClusterOptions base = {});

}  // namespace rtsync::testkit
