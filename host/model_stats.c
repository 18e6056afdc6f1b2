/*
 * model_stats.c - how a model was trained (device, loss, time), as the CLI reports it.
 */
#include "model.h"

#include <math.h>

/* A NULL model gives "" and NaN, as gpuals.h says of getters. */
const char *gpuals_model_device_note(const gpuals_model *m) { return m ? m->device_note : ""; }

double gpuals_model_final_loss(const gpuals_model *m) { return m ? m->final_loss : NAN; }

double gpuals_model_train_seconds(const gpuals_model *m) { return m ? m->train_seconds : NAN; }
