# What `cmake --install` writes, in two components:
#
#   dev     headers, the static libraries, a CMake package (`find_package(atoll)`
#           gives atoll::atoll, and atoll::runtime ... atoll::host for one layer)
#           and a pkg-config file (atoll.pc);
#   server  the atoll binary, its systemd units, the example config, the
#           logrotate file and the docs: what the Debian package holds.
#
# Under the prefix /usr (the .deb's, or `cmake --install --prefix /usr`), the
# config and logrotate files go to /etc and the units to /lib/systemd/system;
# under any other prefix, to PREFIX/etc and PREFIX/lib/systemd/system, so an
# install into a scratch prefix never writes outside it.
include(CMakePackageConfigHelpers)

# --- dev ------------------------------------------------------------------------------
set(ATOLL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/atoll)
install(DIRECTORY include/atoll DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
set_target_properties(llhttp PROPERTIES EXPORT_NAME llhttp)
install(TARGETS llhttp atoll_runtime atoll_net atoll_http atoll_web atoll_host atoll_all
  EXPORT atollTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT atollTargets NAMESPACE atoll:: DESTINATION ${ATOLL_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/atollConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/atollConfig.cmake INSTALL_DESTINATION ${ATOLL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/atollConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/atollConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/atollConfigVersion.cmake
  DESTINATION ${ATOLL_CMAKE_DIR} COMPONENT dev)
file(RELATIVE_PATH ATOLL_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(cmake/atoll.pc.in ${CMAKE_CURRENT_BINARY_DIR}/atoll.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/atoll.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# --- server ---------------------------------------------------------------------------
if(TARGET atoll)
  install(TARGETS atoll RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
endif()
# Debian wants the changelog and man page compressed, reproducibly (-n: no
# name or time stamp). (Configure depends on them, so an edit is picked up.)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/dist/debian/changelog ${PROJECT_SOURCE_DIR}/dist/atoll.1)
execute_process(COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/dist/debian/changelog
  OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES dist/debian/copyright ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz README.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/atoll COMPONENT server)
execute_process(COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/dist/atoll.1
  OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/atoll.1.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/atoll.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  COMPONENT server)
install(CODE "set(ATOLL_DIST \"${PROJECT_SOURCE_DIR}/dist\")" COMPONENT server)
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(atoll_root "")  # a system install: /etc, /lib/systemd/system
  else()
    set(atoll_root "${CMAKE_INSTALL_PREFIX}")
  endif()
  file(INSTALL DESTINATION "${atoll_root}/etc/atoll" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE
    GROUP_READ WORLD_READ FILES "${ATOLL_DIST}/atoll.toml")
  file(INSTALL DESTINATION "${atoll_root}/etc/logrotate.d" TYPE FILE RENAME atoll
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${ATOLL_DIST}/atoll.logrotate")
  file(INSTALL DESTINATION "${atoll_root}/lib/systemd/system" TYPE FILE PERMISSIONS OWNER_READ
    OWNER_WRITE GROUP_READ WORLD_READ FILES "${ATOLL_DIST}/atoll.service" "${ATOLL_DIST}/atoll.socket")
]] COMPONENT server)

# --- the Debian package: `cpack -G DEB` in the build directory --------------------------
# atoll_VERSION_amd64.deb holds the server component only (a library user
# builds from source or installs the dev component).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME atoll)
set(CPACK_PACKAGE_VENDOR "the atoll authors")
set(CPACK_PACKAGE_CONTACT "atoll maintainers <maintainers@atoll.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-tenant static site host with atomic deploys")
set(CPACK_PACKAGE_DESCRIPTION "atoll serve hosts many sites from one small box: a content-addressed
store, SQLite, atomic deploys and rollbacks, TLS with SNI per site, an admin
API with an audit trail, and supervised workers that reload and upgrade
without dropping connections.")
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};atoll;server;/")
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # (with CPACK_SET_DESTDIR, the prefix the install sees)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://atoll.invalid/")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/dist/debian/conffiles
  ${PROJECT_SOURCE_DIR}/dist/debian/postinst ${PROJECT_SOURCE_DIR}/dist/debian/postrm)
include(CPack)
