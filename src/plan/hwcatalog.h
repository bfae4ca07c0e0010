/*
 * hwcatalog.h — the hardware catalog (data/hardware.json) and `this` machine.
 *
 * The catalog is data with a source for every figure; this module turns an
 * entry into the plain plan_hw the model computes with. The entry `this`
 * has no figures in the file: they are probed at run time (cores, memory,
 * clock and instruction set, from base/machine.h) or measured (bandwidth,
 * from a bench JSON or a quick streaming read), as docs/planner.md
 * describes.
 */
#ifndef RACKLLM_HWCATALOG_H
#define RACKLLM_HWCATALOG_H

#include <stdbool.h>

#include "base/common.h"
#include "plan.h"

/* Entries in the file, `this` included. */
int hwcatalog_count(rl_err *err);

/* Entry i / by id. For `this` only the id, name, kind and efficiency
 * defaults are filled: use hwcatalog_this for its figures. */
int hwcatalog_get(int i, plan_hw *hw, rl_err *err);
int hwcatalog_find(const char *id, plan_hw *hw, rl_err *err);

/* `this` machine: its peaks are its cores x clock x machine_peak_per_cycle
 * for the best kernels its CPU allows. bandwidth_gbs > 0 (from a bench) is used as is; else it
 * is measured (machine_bandwidth over 256 MiB, at most 1/8 of the memory). */
int hwcatalog_this(double bandwidth_gbs, plan_hw *hw, rl_err *err);

#endif
