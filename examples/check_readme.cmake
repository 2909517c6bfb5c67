# Fails when the program between the quickstart markers of README.md is not examples/quickstart.cpp
# (without its two-line header comment). Run by ctest as readme_quickstart.
#   cmake -DREADME=README.md -DEXAMPLE=examples/quickstart.cpp -P examples/check_readme.cmake
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(REGEX MATCH "<!-- quickstart:begin -->\n```cpp\n(.*)\n```\n<!-- quickstart:end -->" found
       "${readme}")
if(NOT found)
  message(FATAL_ERROR "README.md has no quickstart block")
endif()
set(shown "${CMAKE_MATCH_1}")
string(REGEX REPLACE "^//[^\n]*\n//[^\n]*\n" "" program "${example}")
string(REGEX REPLACE "\n+$" "" program "${program}")
if(NOT shown STREQUAL program)
  message(FATAL_ERROR "README.md's quickstart differs from examples/quickstart.cpp")
endif()
