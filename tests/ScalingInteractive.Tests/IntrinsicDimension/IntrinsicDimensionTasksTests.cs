using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Proxies;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class IntrinsicDimensionTasksTests
{
    [SharedDataFact]
    public void Creates_the_mnist_task_from_a_data_folder()
    {
        using var task = IntrinsicDimensionTasks.Create("MNIST-MLP", new IntrinsicTaskOptions { DataDirectory = RepoPaths.SharedData });
        Assert.Equal("mnist-mlp", task.Name);
        using var model = task.CreateModel(0);
        Assert.Equal(199_210, SubspaceTraining.ParameterCount(model));
        Assert.Equal("mnist t10k split 8000/2000 seed 1234", IntrinsicDimensionTasks.DataDescription("mnist-mlp"));
        Assert.Contains("seq 32", IntrinsicDimensionTasks.DataDescription("lm", new IntrinsicTaskOptions { SequenceLength = 32 }));
    }

    [Fact]
    public void Missing_data_and_unknown_names_are_clear_errors()
    {
        string empty = Directory.CreateTempSubdirectory("si-tasks-").FullName;
        try
        {
            var options = new IntrinsicTaskOptions { DataDirectory = empty };
            Assert.Contains(MnistData.TestImagesFile, Assert.Throws<FileNotFoundException>(() => IntrinsicDimensionTasks.Create("mnist-cnn", options)).Message);
            Assert.Contains(TextCorpus.TinyShakespeareFile, Assert.Throws<FileNotFoundException>(() => IntrinsicDimensionTasks.Create("lm", options)).Message);
            Assert.Contains("mnist-mlp, mnist-cnn, lm", Assert.Throws<ArgumentException>(() => IntrinsicDimensionTasks.Create("resnet", options)).Message);
        }
        finally { Directory.Delete(empty, recursive: true); }
    }
}
