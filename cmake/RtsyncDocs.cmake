# `docs`: the API reference of include/rtsync, generated with Doxygen (scripts/api-docs.sh,
# docs/Doxyfile), as HTML in <build>/docs/html. Not part of `all`; needs `doxygen` and python3.
find_program(DOXYGEN_EXECUTABLE doxygen)
find_program(PYTHON3_EXECUTABLE python3)
if(DOXYGEN_EXECUTABLE AND PYTHON3_EXECUTABLE)
  add_custom_target(docs
    COMMAND bash "${CMAKE_SOURCE_DIR}/scripts/api-docs.sh" "${CMAKE_BINARY_DIR}/docs"
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    COMMENT "API reference (Doxygen) in ${CMAKE_BINARY_DIR}/docs/html"
    VERBATIM)
else()
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo "docs: install doxygen and python3 (scripts/install-deps.sh)"
    COMMAND ${CMAKE_COMMAND} -E false)
endif()
