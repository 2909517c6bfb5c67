// Beast's separately compiled definitions (BOOST_BEAST_SEPARATE_COMPILATION, set by rtsync_flags),
// compiled once for everything that links rtsync_beast: the client transport, the client's REST
// layer and the server's HTTP front.
#include <boost/beast/src.hpp>
