# common.mk - the storage service code that is compiled into BOTH the storage
# daemon/CLI and the PostgreSQL extension (docs/architecture.md, "Repository
# layout": written once, no PostgreSQL headers).  Included by storage_service/Makefile; the top-level
# Makefile (or the extension's PGXS makefile) may include it too:
#
#     include storage_service/common.mk
#     OBJS += $(AURORA_COMMON_SRCS:.c=.o)      # common/crc32c.c common/wire.c
#                                              # common/quorum.c common/client.c
#     PG_CPPFLAGS += $(AURORA_COMMON_INCLUDE)
#     SHLIB_LINK += $(AURORA_COMMON_LIBS)
#
# The files build cleanly with PostgreSQL's usual flags (-std=gnu99
# -Wmissing-prototypes -Wdeclaration-after-statement ...); "make check-pgflags"
# verifies that.

AURORA_STORAGE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

AURORA_COMMON_SRC_NAMES := crc32c.c util.c wire.c quorum.c logmsg.c link.c client.c pgwriter.c volume.c walmeta.c pagemsg.c watermark.c nodelist.c start_state.c start_state_msg.c start_state_client.c epochmsg.c
AURORA_COMMON_SRCS := $(addprefix $(AURORA_STORAGE_DIR)/common/,$(AURORA_COMMON_SRC_NAMES))
AURORA_COMMON_HEADERS := $(addprefix $(AURORA_STORAGE_DIR)/common/,crc32c.h wire.h quorum.h logmsg.h link.h client.h pgwriter.h util.h version.h volume.h walmeta.h pagemsg.h byteorder.h watermark.h nodelist.h start_state.h start_state_msg.h start_state_client.h epochmsg.h)
AURORA_COMMON_INCLUDE := -I$(AURORA_STORAGE_DIR)/common

# Debian 12 ships NNG 1.5 without a pkg-config file; fall back to -lnng.
# NNG runs its own threads, hence -lpthread for older toolchains.
AURORA_NNG_CFLAGS := $(shell pkg-config --cflags nng 2>/dev/null)
AURORA_NNG_LIBS := $(or $(shell pkg-config --libs nng 2>/dev/null),-lnng)
AURORA_COMMON_LIBS := $(AURORA_NNG_LIBS) -lpthread
