/* The golden-suite harness (test_golden.c), for every backend's tests: runs
 * every case of tests/golden/ (the .golden files) on the named device, one test case
 * each (named "golden/<case>@<device>"), and returns how many ran. */
#ifndef RYFT_TESTS_GOLDEN_H
#define RYFT_TESTS_GOLDEN_H
int golden_run_all(const char *device_name);
#endif
