/*
 * model_stats.c - how a model was trained (device, loss, time), as the CLI reports it.
 */
#include "model.h"

const char *gpuals_model_device_note(const gpuals_model *m) { return m->device_note; }

double gpuals_model_final_loss(const gpuals_model *m) { return m->final_loss; }

double gpuals_model_train_seconds(const gpuals_model *m) { return m->train_seconds; }
