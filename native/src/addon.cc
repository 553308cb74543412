// Sluice native addon: the I/O that decides throughput.
// Context-aware (NODE_API_MODULE), so worker threads can load it.
#include <napi.h>

namespace {

Napi::Value AbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), 1);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Function::New(env, AbiVersion));
  return exports;
}

}  // namespace

NODE_API_MODULE(sluice_native, Init)
