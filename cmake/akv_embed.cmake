# akv_embed(NAME <name> NAMESPACE <ns> BASE <dir> FILES <file>...): a build step writing
# ${CMAKE_CURRENT_BINARY_DIR}/generated/<name>.{cpp,hpp}, which hold every file as a
# std::string_view constant <ns>::<path below BASE, '/', '.' and '-' as '_', ".lua" dropped>.
# Lua scripts and the browser client stay readable files in the tree and are compiled in.
# Sets <name>_SOURCE (the .cpp to add to a target) and <name>_DIR (its include directory).
function(akv_embed)
  cmake_parse_arguments(E "" "NAME;NAMESPACE;BASE" "FILES" ${ARGN})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/generated)
  string(REPLACE ";" "|" list "${E_FILES}")
  add_custom_command(
    OUTPUT ${dir}/${E_NAME}.cpp ${dir}/${E_NAME}.hpp
    COMMAND ${CMAKE_COMMAND} -DOUT_CPP=${dir}/${E_NAME}.cpp -DOUT_HPP=${dir}/${E_NAME}.hpp
            -DBASE=${E_BASE} -DNS=${E_NAMESPACE} "-DSOURCES=${list}"
            -P ${PROJECT_SOURCE_DIR}/libasync_kv/cmake_embed_lua.cmake
    DEPENDS ${E_FILES} ${PROJECT_SOURCE_DIR}/libasync_kv/cmake_embed_lua.cmake
    COMMENT "Embedding ${E_NAME}" VERBATIM)
  set(${E_NAME}_SOURCE ${dir}/${E_NAME}.cpp PARENT_SCOPE)
  set(${E_NAME}_DIR ${dir} PARENT_SCOPE)
endfunction()
