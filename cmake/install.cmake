# What `cmake --install` puts where (GNU layout under CMAKE_INSTALL_PREFIX, /usr/local by
# default), and the Debian package CPack builds from it. See docs/install.md.

# The public API as one shared library: every layer's objects, linked whole.
# (The archives are named as files inside --whole-archive; linking the targets as well brings
# their own dependencies: FFmpeg, OpenBLAS, CUDA, ...)
set(_vidi_layers vidi_runtime vidi_model vidi_backend vidi_media vidi_io vidi_core)
if(TARGET vidi_backend_cuda)
  list(APPEND _vidi_layers vidi_backend_cuda)
endif()
set(_vidi_archives)
foreach(t ${_vidi_layers})
  list(APPEND _vidi_archives $<TARGET_FILE:${t}>)
endforeach()
add_library(vidi_shared SHARED ${CMAKE_CURRENT_SOURCE_DIR}/cmake/empty.cpp)
add_dependencies(vidi_shared ${_vidi_layers})
target_link_libraries(vidi_shared PRIVATE -Wl,--whole-archive ${_vidi_archives} -Wl,--no-whole-archive ${_vidi_layers})
set_target_properties(vidi_shared PROPERTIES OUTPUT_NAME vidi VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(vidi_shared INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

install(TARGETS vidi RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS vidi_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_SKIP)
install(TARGETS vidi_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev NAMELINK_ONLY)
install(DIRECTORY include/vidi DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
# The page is compiled into `vidi` (the server needs no files); the sources are installed for
# reference and for pages that build on the API.
install(DIRECTORY src/app/web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/vidi/web COMPONENT runtime
        FILES_MATCHING PATTERN "*.html" PATTERN "*.js" PATTERN "*.css" PATTERN "*.svg")
install(FILES docs/vidi-serve.service README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
configure_file(cmake/vidi.pc.in ${CMAKE_CURRENT_BINARY_DIR}/vidi.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vidi.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vidi)
set(CPACK_PACKAGE_CONTACT "vidi.cpp maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Native engine for ByteDance's Vidi video language models (CLI, HTTP service, library)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION video)
# The Debian libraries it links (FFmpeg, SentencePiece, OpenBLAS, FFTW, OpenSSL, ...) become
# Depends through dpkg-shlibdeps; the CUDA toolkit's libraries are no Debian package and are
# left to the machine's CUDA installation.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
