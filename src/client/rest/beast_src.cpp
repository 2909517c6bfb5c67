// Beast's separately compiled definitions, used only when no other layer defined rtsync_beast.
#include <boost/beast/src.hpp>
