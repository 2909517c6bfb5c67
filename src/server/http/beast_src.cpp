// Beast's separately compiled definitions (BOOST_BEAST_SEPARATE_COMPILATION, set by rtsync_flags),
// once per program: used only when the client transport did not define rtsync_beast already.
#include <boost/beast/src.hpp>
