/*
 * sluice C ABI version.
 *
 * Versioning policy:
 *  - MAJOR changes when anything existing changes meaning or signature. A module built for a
 *    different major is refused at load time.
 *  - MINOR grows when functions are appended to sluice_host_t, fields are appended to a
 *    size-prefixed struct, or enumerators are appended. A module built against an older minor of
 *    the same major keeps working; a module that needs a newer minor than the host is refused.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

#define SLUICE_ABI_VERSION_MAJOR 1
#define SLUICE_ABI_VERSION_MINOR 4

#define SLUICE_VERSION_STRING "0.1.0"

#endif /* SLUICE_VERSION_H */
