// nftables over netlink, without the nft CLI. This umbrella header pulls in the whole layer:
//   spec.hpp, expr.hpp  typed specs of tables, chains, sets/maps, elements and rules (pure values)
//   codec.hpp           specs <-> nf_tables messages (the only libnftnl user besides dump/batch)
//   batch.hpp           one journaled transaction built from specs
//   socket.hpp          the NETLINK_NETFILTER socket: commit a batch, run a request
//   dump.hpp            read a table (or all chains) back as specs
//   monitor.hpp         change notifications of watched tables
//   conntrack.hpp       delete conntrack entries (ctnetlink)
//
// Header hygiene: no header of this layer includes libmnl/libnftnl/<linux/netfilter*.h>; they
// name libmnl/libnftnl types only by forward declaration, so any layer may include them (libnl
// and linux/netfilter.h cannot share a translation unit). Numeric constants (NFT_MSG_*,
// NFPROTO_*, NLM_F_*) are plain integers; the .cpp files that need them include the kernel
// headers themselves. libmnl/libnftnl are linked by this layer only (lib/nft/meson.build).
#pragma once

#include "nft/batch.hpp"
#include "nft/dump.hpp"
#include "nft/expr.hpp"
#include "nft/monitor.hpp"
#include "nft/socket.hpp"
#include "nft/spec.hpp"
