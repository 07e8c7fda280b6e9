# The RAVEL study as make targets: every intermediate file is a target, so
# a rerun redoes only what changed.  Included by the top-level Makefile;
# `make demo-city` and `make ravel` set the variables below and build $(OUT)/table.txt.
#
#   $(OUT)/train.pairs   ravel-pairs --split train | hd-filter   (pairs the model knows)
#   $(OUT)/test.pairs    the same for the held-out templates (split test)
#   $(OUT)/train.acts    cache-acts: every hidden state of base and source
#   $(OUT)/test.acts
#   $(OUT)/hyperdas.log  hd-train (checkpoint in $(OUT)/hyperdas.ckpt)
#   $(OUT)/das.log       hd-train --method das (checkpoint in $(OUT)/das.ckpt)
#   $(OUT)/hyperdas.scores, $(OUT)/das.scores   hd-score on test.acts
#   $(OUT)/table.txt     both summaries side by side (hd-score --summarize --table)
#   $(OUT)/plots/        heatmaps of the selections (hd-plot --heatmaps, index.html)
#   $(OUT)/loss.svg      training curves of both runs (hd-plot --curve)
#
# The stamp of a trained model is its log: hd-train writes it atomically at
# the end, so an interrupted run leaves no log and is redone.

RAVEL_BIN     ?= $(BIN)
OUT           ?= out/ravel
DOMAIN        ?= city
MODEL         ?=
DEVICE        ?= cpu
SEED          ?= 42
TEST_SEED     ?= $(SEED)
N_TRAIN       ?= all
N_TEST        ?= all
THREADS       ?=
HD_TRAIN_OPTS ?=
DAS_TRAIN_OPTS?=
SCORE_MODES   ?= soft,column_argmax,bidding_argmax,global_argmax,random
DAS_MODES     ?= groundtruth,random

RAVEL_TOOLS   := $(addprefix $(RAVEL_BIN)/,ravel-pairs hd-filter cache-acts hd-train hd-score hd-plot)
MODEL_OPT     := $(if $(MODEL),-m $(MODEL))
FORWARD_OPT   := $(if $(filter cuda,$(DEVICE)),--device cuda)
THREAD_OPT    := $(if $(THREADS),-t $(THREADS))

.PHONY: ravel-pipeline ravel-device-check
.DELETE_ON_ERROR:

# DEVICE=cuda: every tool that runs the target (hd-filter, cache-acts,
# hd-train, hd-score) runs it on the GPU (--device cuda).
ravel-device-check:
	@case "$(DEVICE)" in \
	  cpu|cuda) ;; \
	  *) echo "ravel: DEVICE=$(DEVICE): expected cpu or cuda" >&2; exit 2 ;; \
	esac

ravel-pipeline: ravel-device-check $(OUT)/table.txt $(OUT)/plots/index.html $(OUT)/loss.svg
	@cat $(OUT)/table.txt

$(OUT)/train.pairs $(OUT)/test.pairs: $(OUT)/%.pairs: $(RAVEL_TOOLS)
	@mkdir -p $(OUT)
	$(RAVEL_BIN)/ravel-pairs --domain $(DOMAIN) --split $* \
	  --seed $(if $(filter train,$*),$(SEED),$(TEST_SEED)) \
	  -n $(if $(filter train,$*),$(N_TRAIN),$(N_TEST)) \
	| $(RAVEL_BIN)/hd-filter $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) --stats \
	    --known-out $(OUT)/$*.known -o $@ 2> $(OUT)/$*.filter.txt
	@tail -1 $(OUT)/$*.filter.txt

$(OUT)/%.acts: $(OUT)/%.pairs
	$(RAVEL_BIN)/cache-acts $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) -o $@ $<

$(OUT)/hyperdas.log: $(OUT)/train.acts $(OUT)/test.acts
	rm -rf $(OUT)/hyperdas.ckpt
	$(RAVEL_BIN)/hd-train $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) -c $(OUT)/hyperdas.ckpt --seed $(SEED) \
	  --val $(OUT)/test.acts $(HD_TRAIN_OPTS) -o $@ $(OUT)/train.acts

$(OUT)/das.log: $(OUT)/train.acts $(OUT)/test.acts
	rm -rf $(OUT)/das.ckpt
	$(RAVEL_BIN)/hd-train --method das $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) -c $(OUT)/das.ckpt \
	  --seed $(SEED) --val $(OUT)/test.acts $(DAS_TRAIN_OPTS) -o $@ $(OUT)/train.acts

$(OUT)/hyperdas.scores: $(OUT)/hyperdas.log
	$(RAVEL_BIN)/hd-score $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) -c $(OUT)/hyperdas.ckpt \
	  --modes $(SCORE_MODES) -o $@ $(OUT)/test.acts

$(OUT)/das.scores: $(OUT)/das.log
	$(RAVEL_BIN)/hd-score $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) -c $(OUT)/das.ckpt \
	  --modes $(DAS_MODES) -o $@ $(OUT)/test.acts

$(OUT)/table.txt: $(OUT)/hyperdas.scores $(OUT)/das.scores
	$(RAVEL_BIN)/hd-score --summarize --table $^ > $@.tmp && mv $@.tmp $@

$(OUT)/plots/index.html: $(OUT)/hyperdas.scores $(OUT)/das.scores
	$(RAVEL_BIN)/hd-plot --heatmaps $(OUT)/plots $^

$(OUT)/loss.svg: $(OUT)/hyperdas.log $(OUT)/das.log
	$(RAVEL_BIN)/hd-plot --curve $@ $^
