// main.cpp: the Catch2 runner of the unit tests (kept alone so the test files compile fast).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
