// Test-only view into the Beast transport (private to src/client/transport and its tests; not
// installed, not for production code).
#pragma once

#include <cstddef>

#include "rtsync/client/transport/transport.hpp"

namespace rtsync::client::testing {

// Bytes of the current connection's receive buffer (0 when `transport` is not a Beast transport
// or has no connection). Call on the transport's loop thread.
std::size_t read_buffer_capacity(const Transport& transport);

}  // namespace rtsync::client::testing
