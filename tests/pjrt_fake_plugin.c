/* Fake PJRT plugins for the loader's error tests (built only with
 * RYFT_PJRT): GetPjrtApi returns an API table with no functions and the
 * version in $RYFT_FAKE_PJRT_VERSION ("major.minor", default "99.0"), so the
 * loader must reject it by version before calling anything. Built with
 * PJRT_FAKE_NO_ENTRY it exports no GetPjrtApi at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjrt_c_api.h"

#ifdef PJRT_FAKE_NO_ENTRY
int pjrt_fake_not_a_plugin(void);
int pjrt_fake_not_a_plugin(void) { return 42; }
#else
static PJRT_Api fake_api;

const PJRT_Api *GetPjrtApi(void);
const PJRT_Api *GetPjrtApi(void) {
  int major = 99, minor = 0;
  const char *v = getenv("RYFT_FAKE_PJRT_VERSION");
  if (v) sscanf(v, "%d.%d", &major, &minor);
  memset(&fake_api, 0, sizeof fake_api);
  fake_api.struct_size = PJRT_Api_STRUCT_SIZE;
  fake_api.pjrt_api_version.struct_size = PJRT_Api_Version_STRUCT_SIZE;
  fake_api.pjrt_api_version.major_version = major;
  fake_api.pjrt_api_version.minor_version = minor;
  return &fake_api;
}
#endif
