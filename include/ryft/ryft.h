/* ryft/ryft.h - everything: trace C functions into programs, transform and
 * compile them, and run them on a device. See README.md for a tour. */
#ifndef RYFT_RYFT_H
#define RYFT_RYFT_H
#include "core.h"
#include "trace.h"
#include "graph.h"
#include "runtime.h"
#include "jit.h"
#include "io.h"
#include "gguf.h"
#include "params.h"
#include "random.h"
#include "transform.h"
#include "stablehlo.h"
#include "pjrt.h"
#include "llm.h"
#include "model.h"
#include "dist.h"
#include "lm_train.h"
#endif
