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
# The stamp of a trained model is its log, in place only once the training
# has ended; an interrupted training resumes from its checkpoint (saved
# every SAVE_EVERY steps, and where a signal stopped it) on the next make
# (train_resumable, below).

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
SAVE_EVERY    ?= 250
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

# ---- Training that an interruption does not lose.
#   $(call train_resumable,CKPT,LOG,OPTIONS,INPUT)
# runs hd-train OPTIONS -c CKPT -o LOG INPUT, LOG written as LOG.part until
# the run ends.  hd-train stopped by a signal (Ctrl-C, a batch system's
# time limit) saves the step it stopped at and keeps its log (hd-train(1),
# CHECKPOINTS), and a SIGKILL leaves the last checkpoint OPTIONS asked for
# (--save-every).  A CKPT that still holds its spool, made after INPUT,
# is such an unfinished run: the next make resumes it with --resume CKPT
# OPTIONS (options the checkpoint fixes may be given again with its
# values), keeps each earlier log in CKPT and joins the logs in order into
# LOG (after a SIGKILL that run's log is lost: the joined log lacks its
# steps).  A finished run's spool is removed; delete CKPT to start over.
train_resumable = rm -f $(2).part.tmp.*; \
	if [ -e $(1)/latest ] && [ $(1)/train.spool -nt $(4) ]; then \
	  n=$$(ls $(1) | grep -c '^log-part-'); \
	  if [ -e $(2).part ]; then mv $(2).part $(1)/log-part-$$(printf %03d $$n); fi; \
	  echo "resuming $(1) from its $$(readlink $(1)/latest)"; \
	  $(RAVEL_BIN)/hd-train --resume $(1) $(3) -o $(2).part; \
	else \
	  rm -rf $(1) $(2).part && $(RAVEL_BIN)/hd-train $(3) -c $(1) -o $(2).part $(4); \
	fi && \
	cat $$(ls -d $(1)/log-part-* 2>/dev/null) $(2).part > $(2).joined && \
	rm -f $(1)/*.spool $(1)/log-part-* $(2).part && mv $(2).joined $(2)

$(OUT)/hyperdas.log: $(OUT)/train.acts $(OUT)/test.acts
	$(call train_resumable,$(OUT)/hyperdas.ckpt,$@,$(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) --seed $(SEED) \
	  --val $(OUT)/test.acts $(HD_TRAIN_OPTS) --save-every $(SAVE_EVERY),$(OUT)/train.acts)

$(OUT)/das.log: $(OUT)/train.acts $(OUT)/test.acts
	$(call train_resumable,$(OUT)/das.ckpt,$@,--method das $(MODEL_OPT) $(FORWARD_OPT) $(THREAD_OPT) \
	  --seed $(SEED) --val $(OUT)/test.acts $(DAS_TRAIN_OPTS) --save-every $(SAVE_EVERY),$(OUT)/train.acts)

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
