// cnetd: wiring only; see daemon/daemon.hpp.
#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
    return cnetd::daemon::run(argc, argv);
}
