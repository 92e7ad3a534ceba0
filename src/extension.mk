# src/extension.mk: PGXS build of the aurora extension (compute side).
# Called by the top-level Makefile with PG_CONFIG pointing at the patched
# server; run from the top of the repository.  The storage service's shared
# code (codec, CRC, quorum arithmetic, NNG client) is compiled in from
# storage_service/common, never copied.

# PGXS takes its srcdir from VPATH when set; this file is not at the top.
VPATH = $(CURDIR)

MODULE_big = aurora
include storage_service/common.mk

OBJS = \
	src/aurora.o \
	src/commit_wait.o \
	src/compute_volume.o \
	src/copy_guard.o \
	src/last_written_lsn.o \
	src/local_pages.o \
	src/lsn_allocation_limit.o \
	src/node_list.o \
	src/page_reader.o \
	src/record_meta.o \
	src/redo_filter.o \
	src/relsize_cache.o \
	src/shipper.o \
	src/shipping_status.o \
	src/smgr.o \
	src/sql_functions.o \
	src/start_state_writer.o \
	src/volume_session.o \
	src/volume_start.o \
	src/wal_routing.o \
	src/walredo.o \
	src/walredo_pipe.o \
	src/watermarks.o \
	$(AURORA_COMMON_SRCS:.c=.o)

EXTENSION = aurora
DATA = sql/aurora--0.1.sql sql/aurora--0.1--0.2.sql sql/aurora--0.2--0.3.sql \
	sql/aurora--0.3--0.4.sql sql/aurora--0.4--0.5.sql sql/aurora--0.5--0.6.sql
PGFILEDESC = "aurora - Aurora-style disaggregated storage"

PG_CFLAGS = -Werror
PG_CPPFLAGS = -I$(CURDIR)/src $(AURORA_COMMON_INCLUDE)
SHLIB_LINK = $(AURORA_COMMON_LIBS)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a changed struct in a shared header
# must rebuild every object that uses it.
$(OBJS): $(wildcard $(CURDIR)/src/*.h) $(AURORA_COMMON_HEADERS)
