// Beast's separately compiled definitions (BOOST_BEAST_SEPARATE_COMPILATION, set by rtsync_flags),
// compiled once for everything that links rtsync_beast.
#include <boost/beast/src.hpp>
