// akv::ml_torch from an install: linked with libtorch through the package, and refusing a file
// that is not TorchScript by name.
#include <akv/error.hpp>
#include <akv/ml/torch_model.hpp>

#include <iostream>

int main() {
    akv::ml::model_spec spec = akv::ml::model_spec::parse(R"({"kind": "torchscript",
        "inputs": [{"name": "x", "dtype": "f32", "shape": [4]}],
        "outputs": [{"name": "y", "dtype": "f32", "shape": [1]}]})");
    try {
        akv::ml::torch_model model("not a module", spec, "consumer:v1");
    } catch (const boost::system::system_error& e) {
        if (e.code() == akv::error::invalid_model) {
            std::cout << "torch consumer ok\n";
            return 0;
        }
        std::cout << "unexpected error: " << e.what() << "\n";
        return 1;
    }
    std::cout << "a file that is not TorchScript was accepted\n";
    return 1;
}
