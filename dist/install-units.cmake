# install-units.cmake: runs at install time (install(CODE) in CMakeLists.txt)
# to fill the systemd units with the paths of this installation and install
# them. CMAKE_INSTALL_PREFIX is the install-time prefix here (--prefix wins
# over the configured one); file(INSTALL) adds DESTDIR and records the files
# in install_manifest.txt like every other installed file.
function(hpq_dist_abs var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

hpq_dist_abs(HPQ_SBINDIR "${HPQ_DIST_SBINDIR}")
hpq_dist_abs(HPQ_EXAMPLESDIR "${HPQ_DIST_EXAMPLESDIR}")
hpq_dist_abs(HPQ_SYSUSERSDIR "${HPQ_DIST_SYSUSERSDIR}")
hpq_dist_abs(unitdir "${HPQ_DIST_UNITDIR}")
set(HPQ_CONFDIR "${HPQ_DIST_CONFDIR}")

foreach(unit hpqd.service hpq-agent.service)
  configure_file("${HPQ_DIST_SOURCE_DIR}/${unit}.in" "${HPQ_DIST_BINARY_DIR}/${unit}" @ONLY)
  file(INSTALL "${HPQ_DIST_BINARY_DIR}/${unit}" DESTINATION "${unitdir}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
