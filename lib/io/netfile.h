/*
 * netfile.h -- the versioned binary format of saved networks.
 *
 * Layout (all integers little-endian, doubles as their IEEE-754 bits):
 *   8 bytes  magic 89 'T' 'N' 'N' 'E' 'T' 0D 0A (PNG-style: catches text-mode
 *            and 7-bit damage)
 *   u32      format version (TNI_NETFILE_VERSION)
 *   u32      input ndim, then ndim x u64 input shape
 *   u32      parameterization, u32 sigma_w explicitly set (0/1)
 *   f64      sigma_w, sigma_b, leaky slope
 *   u64      number of nodes after the input, then per node: u32 kind,
 *            u32 inputs, that many u64 node ids, u32 attributes, that many u64
 *            (the kind's own words: graph.h; kinds are numbered in tni_kind)
 *   u64      the output node
 *   u64      P, then P x f64 theta
 *   u32      CRC-32 (IEEE) of every byte before it
 * Version 1 (libtaylornet 0.1) had a list of layers where version 2 has the
 * nodes and the output: u64 number of layers, then per layer u32 kind
 * (1 dense, 2 activation), u32 activation, u64 width; it is still read.
 * A reader refuses a newer version with TN_E_VERSION, and anything truncated,
 * inconsistent or failing the checksum with TN_E_FORMAT -- including sizes
 * that overflow (they can only come from a damaged or hostile file).
 *
 * The same bytes, whole, are a checkpoint's network section
 * (train/checkpoint.c): one encoder and one parser serve both files.
 */
#ifndef TNI_NETFILE_H
#define TNI_NETFILE_H

#include "binfile.h"

#define TNI_NETFILE_VERSION 2u

/* tn_net_save / tn_net_load. */
tn_status tni_netfile_save(const tn_net *net, const char *path);
tn_status tni_netfile_load(tn_ctx *ctx, const char *path, tn_net **out);

/* A complete network file (magic to CRC) into w. */
void tni_netfile_encode(tni_writer *w, const tn_net *net);
/* A network from the len bytes of a complete network file.  Messages read
 * "<fn>: '<where>': ..." (where: the path, or a part of a file). */
tn_status tni_netfile_parse(tn_ctx *ctx, const char *fn, const char *where,
                            const unsigned char *data, size_t len, tn_net **out);

#endif
